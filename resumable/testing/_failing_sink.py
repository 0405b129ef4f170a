"""`FailingSink`: a sink that fails on purpose; `MemorySink`: one that keeps a list."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Literal, TypeAlias

from resumable._errors import StaleWriterError
from resumable._sink import Sink
from resumable.testing._faults import Faults

__all__ = ["FailingSink", "MemorySink", "SinkOperation"]

SinkOperation: TypeAlias = Literal["count", "read", "append"]
"""A sink operation that `FailingSink` can make fail."""

_APPENDS: tuple[SinkOperation, ...] = ("append",)


class MemorySink:
    """A sink that keeps its items in a list, for tests.

    It checks *start* as a database does in the transaction of an insert: an append at
    another position raises `StaleWriterError` and adds nothing.

    Args:
        items: What the sink holds to begin with.

    Attributes:
        items: What the sink holds, in order.
        appends: The number of items of each append that landed.
    """

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.items: list[Any] = list(items)
        self.appends: list[int] = []

    def __repr__(self) -> str:
        return f"MemorySink(<{len(self.items)} items>)"

    async def count(self) -> int:
        """Return how many items the sink holds."""
        return len(self.items)

    async def read(self, start: int, limit: int) -> list[Any]:
        """Return up to *limit* items from position *start* on."""
        return self.items[start : start + limit]

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Add *items* at the end, if the sink holds *start* items.

        Raises:
            StaleWriterError: The sink holds another number of items; nothing was added.
        """
        if start != len(self.items):
            raise StaleWriterError(
                f"{self!r} holds {len(self.items)} item(s), not the {start} expected"
            )
        self.items.extend(items)
        self.appends.append(len(items))


class FailingSink(Faults):
    """A sink that fails on purpose, to test what a job does when its sink is down or slow.

    Wraps another sink (a fresh `MemorySink` by default) and makes chosen calls raise, as a
    destination that is down would: before they touch it, or, with ``lands=True``, after an
    append has reached it (a reply lost on the way back, which the engine must settle by
    reading the sink, never by appending again). Which calls fail is picked as in
    `FailingStore` (appends only, by default): ``first=``, ``every=``, ``after=``,
    ``forever=``, `fail_next`; the options are attributes, so ``sink.forever = False``
    heals it while a job runs. ``delay=3600`` makes a failing call hang, as a dead
    connection does.

    Args:
        inner: The sink that holds the items.
        first: Fail the first N calls.
        every: Fail every Nth call (the Nth, the 2Nth, ...).
        after: Fail every call once this many seconds have passed since the sink was made.
        forever: Fail every call.
        error: What a failure raises: an exception (a fresh copy each time) or a callable
            returning one. Default: `ConnectionError`.
        delay: Seconds a failing call waits before it raises, as a slow destination would.
        lands: A failing append still reaches the inner sink before it waits and raises.
        operations: Which operations can fail: ``"count"``, ``"read"``, ``"append"``.

    Attributes:
        calls: Calls of the failing operations so far.
        failures: How many of them failed.
    """

    def __init__(
        self,
        inner: Sink | None = None,
        *,
        first: int = 0,
        every: int | None = None,
        after: float | None = None,
        forever: bool = False,
        error: BaseException | Callable[[], BaseException] | None = None,
        delay: float = 0.0,
        lands: bool = False,
        operations: Collection[SinkOperation] = _APPENDS,
    ) -> None:
        super().__init__(
            first=first,
            every=every,
            after=after,
            forever=forever,
            error=error,
            delay=delay,
            lands=lands,
            operations=operations,
            known=("count", "read", "append"),
        )
        self.inner: Sink = inner if inner is not None else MemorySink()

    def __repr__(self) -> str:
        return f"FailingSink({self.inner!r})"

    async def count(self) -> int:
        """Return the inner sink's count, unless this call fails."""
        await self._maybe_fail("count", "")
        return await self.inner.count()

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        """Return the inner sink's items, unless this call fails."""
        await self._maybe_fail("read", f" from position {start}")
        return await self.inner.read(start, limit)

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Append to the inner sink, unless this call fails (after landing, with ``lands``)."""
        if not self._fails("append"):
            await self.inner.append(items, start)
            return
        if self.lands:
            await self.inner.append(items, start)
        await self._raise("append", f" of {len(items)} item(s) at position {start}")
