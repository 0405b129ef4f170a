"""The harness under `assert_resumes`: run a job uninterrupted, crash it at a yield, resume it.

The crash model: the k-th cursor has been persisted, everything held in memory is lost, and
a dead process writes nothing more.
"""

from __future__ import annotations

import reprlib
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

from resumable._declared import Declared
from resumable._engine import Job
from resumable._errors import StaleWriterError
from resumable._snapshot import frozen_copy
from resumable._stores import Guard, MemoryStore, Store

C = TypeVar("C")

Effects: TypeAlias = Sequence[object] | Callable[[], Sequence[object]]
"""What a job wrote: a list it appends to, or a callable returning everything written so far."""

_SHOW = reprlib.Repr()
_SHOW.maxstring = 60
_SHOW.maxother = 60
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 8
_SHOWN_CURSORS = 5


def show(value: object) -> str:
    return _SHOW.repr(value)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def show_cursors(cursors: Sequence[object], *, more: bool = False) -> str:
    shown = ", ".join(show(c) for c in cursors[:_SHOWN_CURSORS])
    if len(cursors) > _SHOWN_CURSORS or more:
        shown += ", ..."
    return f"[{shown}]"


class CrashableStore:
    """A `MemoryStore` that takes no writes after the crash: a dead process sends nothing more."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.crashed = False

    def __repr__(self) -> str:
        return "MemoryStore(<assert_resumes>)"

    async def load(self, key: str) -> bytes | None:
        return await self.memory.load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        if not self.crashed:
            await self.memory.save(key, data, guard=guard)

    async def delete(self, key: str) -> None:
        if not self.crashed:
            await self.memory.delete(key)

    async def keys(self) -> list[str]:
        return await self.memory.keys()


class CrashableSink:
    """An in-memory sink that takes no appends after the crash, like `CrashableStore`."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.crashed = False

    def __repr__(self) -> str:
        return "Sink(<assert_resumes>)"

    async def count(self) -> int:
        return len(self.items)

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        return self.items[start : start + limit]

    async def append(self, items: Sequence[Any], start: int) -> None:
        if self.crashed:
            return
        if start != len(self.items):
            raise StaleWriterError(f"{self!r} holds {len(self.items)} items, not {start}")
        self.items.extend(items)


class EffectLog:
    """Reads the user's effects as slices of one append-only log."""

    def __init__(self, effects: Effects) -> None:
        self._read: Callable[[], Sequence[object]] = (
            effects if callable(effects) else lambda: effects
        )

    def mark(self) -> int:
        return len(self._read())

    def since(self, mark: int) -> list[object]:
        return list(self._read()[mark:])


class Harness(Generic[C]):
    """Runs one job function again and again, each run on a store of its own."""

    def __init__(
        self,
        fn: Declared[Any, C, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        effects: EffectLog | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = dict(kwargs)
        self.default = self.kwargs.pop("cursor", fn.default)
        self.key = fn.key_for(*args, **self.kwargs)
        # The declared options minus where the state goes and what interrupts it: every run
        # gets a store of its own, no timer, no signal handlers. The declared store is never
        # touched.
        self.base = fn.with_options(triggers=(), interval=None, every=None)
        self.effects = effects
        self.name = f"job {self.key!r}"
        if fn.__name__ not in self.key:
            self.name += f" ({fn.__name__})"

    def job(self, store: Store, sink: CrashableSink | None = None) -> Job[C]:
        job, _ = self.base.with_options(store=store, sink=sink).make_job(
            *self.args, cursor=self.default, **self.kwargs
        )
        return job

    def start(self, job: Job[C]) -> AsyncGenerator[C, None]:
        out = {"out": job.out} if self.fn.takes_outbox else {}
        made: AsyncGenerator[C, None] | Generator[C, Any, Any] = self.fn.__wrapped__(
            *self.args, cursor=job.cursor, **self.kwargs, **out
        )
        if isinstance(made, Generator):
            return pulled(made)  # a plain generator's cursors are the same, pulled in turn
        return made

    def mark(self) -> int:
        return self.effects.mark() if self.effects is not None else 0

    def since(self, mark: int) -> list[object]:
        return self.effects.since(mark) if self.effects is not None else []


async def pulled(generator: Generator[C, Any, Any]) -> AsyncGenerator[C, None]:
    """A plain generator's cursors, as an async generator (closed with it)."""
    try:
        for cursor in generator:
            yield cursor
    finally:
        generator.close()


class Baseline(Generic[C]):
    """The uninterrupted run: its cursors, where it ended, and what it wrote between cursors."""

    def __init__(
        self,
        cursors: list[C],
        final: C,
        written: list[object],
        marks: list[int],
        outputs: list[Any],
    ):
        self.outputs = outputs
        self.cursors = cursors
        self.final = final
        self.written = written
        # marks[i]: how much had been written when the i-th cursor was yielded (marks[0] = 0
        # at the start, marks[n + 1] = everything at the end).
        self.marks = marks

    def window(self, k: int) -> list[object]:
        """What the job wrote after its k-th cursor, up to its next one (or its end)."""
        return self.written[self.marks[k] : self.marks[k + 1]]


async def uninterrupted(h: Harness[C]) -> Baseline[C]:
    cursors: list[C] = []
    start = h.mark()
    marks = [0]
    sink = CrashableSink()
    job = h.job(MemoryStore(), sink)
    try:
        async with job:
            generator = h.start(job)
            try:
                async for cursor in generator:
                    job.advance(cursor)
                    cursors.append(frozen_copy(cursor))
                    marks.append(h.mark() - start)
            finally:
                await generator.aclose()
    except Exception as exc:
        exc.add_note(f"(raised by the uninterrupted run of {h.name} in assert_resumes)")
        raise
    written = h.since(start)
    marks.append(len(written))
    assert job.outcome is not None
    return Baseline(cursors, job.outcome.cursor, written, marks, sink.items)


async def crash(
    h: Harness[C], base: Baseline[C], k: int, sink: CrashableSink
) -> tuple[MemoryStore, list[object]]:
    """Run the job until its k-th cursor is persisted and the work after it done, then crash.

    Returns the store as the crash left it and what the run wrote before it crashed; *sink*
    holds the outputs delivered before it.
    """
    n = len(base.cursors)
    store = CrashableStore()
    start = h.mark()
    written: list[object] = []
    job = h.job(store, sink)
    try:
        async with job:
            generator = h.start(job)
            try:
                i = 0
                async for cursor in generator:
                    i += 1
                    if cursor != base.cursors[i - 1]:
                        raise AssertionError(
                            f"{h.name} is not deterministic: run again from the start with the "
                            f"same arguments, its {ordinal(i)} cursor was {show(cursor)}, but "
                            f"the first run's was {show(base.cursors[i - 1])}. assert_resumes "
                            "needs a job whose cursors depend only on its arguments and its "
                            "cursor: feed it fixed test data."
                        )
                    if i == k + 1:
                        break
                    job.advance(cursor)
                    if i == k:
                        await job.save()
                if i < min(k + 1, n):
                    raise AssertionError(
                        f"{h.name} is not deterministic: run again from the start with the same "
                        f"arguments, it ended after {i} cursors, but the first run yielded {n}."
                    )
                written = h.since(start)
                store.crashed = sink.crashed = True
            finally:
                # After the crash: what still runs here never reaches the store or the results.
                store.crashed = sink.crashed = True
                await generator.aclose()
    except AssertionError:
        raise
    except Exception as exc:
        exc.add_note(f"(raised by {h.name} in assert_resumes, run again to crash at yield {k})")
        raise
    return store.memory, written


def explain_crash(h: Harness[C], base: Baseline[C], k: int) -> str:
    n = len(base.cursors)
    head = (
        f"{h.name} does not resume correctly after a crash at yield {k} of {n}.\n"
        f"  The crash: its {ordinal(k)} cursor {show(base.cursors[k - 1])} was persisted, "
    )
    if k < n:
        head += f"then the job went on to yield {show(base.cursors[k])} and the process died.\n"
    else:
        head += "then the job finished and the process died before recording the end.\n"
    return head


async def resume(
    h: Harness[C], base: Baseline[C], k: int, store: MemoryStore, sink: CrashableSink
) -> tuple[list[C], C, list[object]]:
    """Resume the job on the store a crash at yield k left; check where it resumed from.

    Returns the cursors the resumed run yielded, where it ended and what it wrote.
    """
    persisted = base.cursors[k - 1]
    expected = base.cursors[k:]
    actual: list[C] = []
    start = h.mark()
    sink.crashed = False
    job = h.job(store, sink)
    loaded: str | None = None
    try:
        async with job:
            if not job.resumed or job.cursor != persisted:
                loaded = show(job.cursor) if job.resumed else "nothing (a fresh start)"
            else:
                # Stop a resumed run that goes past the end, or that yields without progress.
                limit, steps = (
                    len(distinct_progress(expected, persisted)) + 1,
                    2 * len(expected) + 10,
                )
                progress, previous = 0, persisted
                generator = h.start(job)
                try:
                    async for cursor in generator:
                        job.advance(cursor)
                        actual.append(frozen_copy(cursor))
                        if cursor != previous:
                            progress, previous = progress + 1, cursor
                        if progress >= limit or len(actual) >= steps:
                            break
                finally:
                    await generator.aclose()
    except Exception as exc:
        raise AssertionError(
            explain_crash(h, base, k)
            + f"  The restart from cursor {show(persisted)} raised {type(exc).__name__}: {exc}\n"
            f"  Reproduce just this crash with points=[{k}]."
        ) from exc
    if loaded is not None:
        raise AssertionError(
            explain_crash(h, base, k)
            + f"  The restart loaded {loaded} instead of {show(persisted)}: the cursor does "
            f"not survive the trip through the store (to JSON with cattrs as "
            f"{h.fn.cursor_type!r} and back). Yield values of the annotated cursor type (a "
            "tuple, not a list, for a tuple type), or pass converter= with hooks for it."
        )
    assert job.outcome is not None
    return actual, job.outcome.cursor, h.since(start)


def distinct_progress(cursors: Sequence[C], after: C) -> list[C]:
    """Drop the cursors that repeat the one before them (*after* before the first): no progress."""
    kept: list[C] = []
    for cursor in cursors:
        if cursor != (kept[-1] if kept else after):
            kept.append(cursor)
    return kept
