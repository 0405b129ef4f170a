"""The generators every per-item benchmark drives, floor and subject alike, and the runs of each.

A ratio to a floor is fair only if both sides run the same generator: the subject is the
floor's own generator function under ``@resumable`` (or its cursors fed to ``j.advance``),
never a second generator that re-yields from the first. The wall-clock benchmarks
(`cost.py`, `outputs.py`, `sync.py`) time these runs, and `hot_path.py` runs them under
valgrind for `instructions.py`, so a timed ratio and a counted one measure the same code.

Nothing here is timed; each run returns what it produced, for the caller to check.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from resumable import Outbox, Sink, Store, job, resumable

if TYPE_CHECKING:  # only named in annotations: another checkout may keep them elsewhere
    from resumable._decorator import JobFunction, SyncJobFunction

KEY = "bench"
QUIET: dict[str, Any] = {"interval": None, "triggers": []}
"""Options that leave only the work: no timer, no signal handlers, no platform events."""

Item = dict[str, Any]


# -- async generators: the cursor path ------------------------------------------------------


async def count_up(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
    """The job: one ``int`` cursor per item, nothing else, so only the bookkeeping shows."""
    for i in range(cursor, n):
        yield i + 1


async def drain(n: int) -> int:
    """The floor: a bare ``async for`` over `count_up`, keeping the latest cursor."""
    latest = 0
    async for cursor in count_up(n):
        latest = cursor
    return latest


def decorated(store: Store | None, **options: Any) -> JobFunction[..., int]:
    """`count_up` itself under ``@resumable`` (``store=None``: the environment's default)."""
    return resumable(key=KEY, store=store, **options)(count_up)


async def advancing(n: int, store: Store, **options: Any) -> int:
    """``async with job()``, `count_up`'s cursors fed to ``j.advance`` one by one."""
    async with job(KEY, cursor=0, store=store, **options) as j:
        async for cursor in count_up(n, cursor=j.cursor):
            j.advance(cursor)
    return j.persisted


class Keeping:
    """Whatever keeps a cursor with one Python method call, and nothing else: the least any
    ``j.advance(cursor)`` can cost."""

    __slots__ = ("cursor",)

    def __init__(self) -> None:
        self.cursor = 0

    def advance(self, cursor: int) -> None:
        self.cursor = cursor


async def advancing_nothing(n: int) -> int:
    """`count_up`'s cursors fed to `Keeping.advance` one by one: ``advance``'s floor."""
    kept = Keeping()
    async for cursor in count_up(n):
        kept.advance(cursor)
    return kept.cursor


# -- async generators: outputs --------------------------------------------------------------


class Pushes(Protocol):
    """Where `produce` puts its items: an `Outbox`, or a `Listing` for the floor."""

    def push(self, item: Item, /) -> None:
        """Keep *item*."""


class Listing(list[Item]):
    """A plain list whose ``push`` is ``list.append``: the floor's outbox."""

    __slots__ = ()
    push = list.append


async def produce(n: int, *, cursor: int = 0, out: Pushes = Outbox.GIVEN) -> AsyncIterator[int]:
    """The job with outputs: one small dict pushed per cursor."""
    for i in range(cursor, n):
        out.push({"id": i, "name": "item"})
        yield i + 1


async def drain_into_list(n: int) -> Listing:
    """The floor with outputs: `produce` drained by ``async for``, its items appended to a list."""
    items = Listing()
    async for _ in produce(n, out=items):
        pass
    return items


async def produce_into(n: int, items: Listing, *, cursor: int = 0) -> AsyncIterator[int]:
    """`produce` with a list of its own (a positional parameter, so ``@resumable`` gives no
    outbox): the engine's share of a job with outputs, without the outbox's."""
    for i in range(cursor, n):
        items.push({"id": i, "name": "item"})
        yield i + 1


def pushing(store: Store, sink: Sink, **options: Any) -> JobFunction[..., int]:
    """`produce` itself under ``@resumable``: its items go through the outbox into *sink*."""
    return resumable(key=KEY, store=store, sink=sink, **options)(produce)


class KeepingSink:
    """A sink in memory: what is left of the outbox's cost without a file."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __repr__(self) -> str:
        return "KeepingSink()"

    async def count(self) -> int:
        """How many items it holds."""
        return len(self.items)

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        """Up to *limit* items from position *start*."""
        return self.items[start : start + limit]

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Keep *items* (the engine passes the position they start at)."""
        self.items.extend(items)


# -- plain generators -----------------------------------------------------------------------

LOOP: list[float] = [0.0, 0.0]
"""When the latest `count_up_plain` began its first item and finished its last one."""


def count_up_plain(n: int, *, cursor: int = 0) -> Iterator[int]:
    """`count_up` as a plain generator, noting when its loop begins and ends (in `LOOP`)."""
    LOOP[0] = time.perf_counter()
    for i in range(cursor, n):
        yield i + 1
    LOOP[1] = time.perf_counter()


def drain_plain(n: int) -> int:
    """The plain floor: a bare ``for`` over `count_up_plain`, keeping the latest cursor."""
    latest = 0
    for cursor in count_up_plain(n):
        latest = cursor
    return latest


def decorated_plain(store: Store, **options: Any) -> SyncJobFunction[..., int]:
    """`count_up_plain` itself under ``@resumable``: the job's loop runs in a thread of its own."""
    return resumable(key=KEY, store=store, **options)(count_up_plain)


def advancing_plain(n: int, store: Store, **options: Any) -> int:
    """``with job()``, `count_up_plain`'s cursors fed to ``j.advance`` one by one."""
    with job(KEY, cursor=0, store=store, **options) as j:
        for cursor in count_up_plain(n, cursor=j.cursor):
            j.advance(cursor)
    return j.persisted
