"""Test helpers for resumable jobs: `assert_resumes` and `FailingStore`.

`assert_resumes` crashes a job at every yield (or a sample of them), resumes it, and checks
that it carries on exactly where the uninterrupted run went. `FailingStore` wraps a store and
makes it fail on purpose, to test what a job does when its store is down. The pytest plugin
that installing resumable registers offers both as fixtures (``memory_store``,
``failing_store``).

With the ``apify`` extra installed, `PlatformEvents` (a stand-in of the Apify platform's
events websocket on 127.0.0.1, also the ``platform_events`` fixture) and `use_stand_in` (to
call in the Actor under test) are here too, for testing your own Actors.
"""

from __future__ import annotations

import asyncio
import copy
import reprlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from resumable._decorator import JobFunction
from resumable._engine import Job
from resumable._errors import StaleWriterError
from resumable._snapshot import frozen_copy
from resumable._stores import Guard, MemoryStore, Store

try:
    from resumable._platform import PlatformEvents, use_stand_in
except ImportError:  # pragma: no cover - the apify extra brings the websocket library
    _HAVE_PLATFORM = False
else:
    _HAVE_PLATFORM = True

__all__ = ["Effects", "FailingStore", "Operation", "assert_resumes"]
if _HAVE_PLATFORM:
    __all__ += ["PlatformEvents", "use_stand_in"]

C = TypeVar("C")

Effects: TypeAlias = Sequence[object] | Callable[[], Sequence[object]]
"""What a job wrote: a list it appends to, or a callable returning everything written so far."""

Operation: TypeAlias = Literal["load", "save", "delete", "keys"]
"""A store operation that `FailingStore` can make fail."""

_SAVES: tuple[Operation, ...] = ("save",)

_SHOW = reprlib.Repr()
_SHOW.maxstring = 60
_SHOW.maxother = 60
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 8
_SHOWN_CURSORS = 5


def _show(value: object) -> str:
    return _SHOW.repr(value)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _show_cursors(cursors: Sequence[object], *, more: bool = False) -> str:
    shown = ", ".join(_show(c) for c in cursors[:_SHOWN_CURSORS])
    if len(cursors) > _SHOWN_CURSORS or more:
        shown += ", ..."
    return f"[{shown}]"


class _CrashableStore:
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


class _CrashableSink:
    """An in-memory sink that takes no appends after the crash, like `_CrashableStore`."""

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


class _EffectLog:
    """Reads the user's effects as slices of one append-only log."""

    def __init__(self, effects: Effects) -> None:
        self._read: Callable[[], Sequence[object]] = (
            effects if callable(effects) else lambda: effects
        )

    def mark(self) -> int:
        return len(self._read())

    def since(self, mark: int) -> list[object]:
        return list(self._read()[mark:])


def _multiset(items: Sequence[object]) -> Counter[object]:
    """Count *items*; unhashable ones by their repr, so lists of dicts still compare."""
    counts: Counter[object] = Counter()
    for item in items:
        try:
            hash(item)
        except TypeError:
            counts[("<unhashable>", repr(item))] += 1
        else:
            counts[item] += 1
    return counts


def _listed(counts: Counter[object]) -> str:
    items = list(counts.elements())
    return _show_cursors(items)


class _Harness(Generic[C]):
    """Runs one job function again and again, each run on a store of its own."""

    def __init__(
        self,
        fn: JobFunction[Any, C],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        effects: _EffectLog | None,
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

    def job(self, store: Store, sink: _CrashableSink | None = None) -> Job[C]:
        job, _ = self.base.with_options(store=store, sink=sink).make_job(
            *self.args, cursor=self.default, **self.kwargs
        )
        return job

    def start(self, job: Job[C]) -> AsyncGenerator[C, None]:
        out = {"out": job.out} if self.fn.takes_outbox else {}
        return self.fn.__wrapped__(*self.args, cursor=job.cursor, **self.kwargs, **out)

    def mark(self) -> int:
        return self.effects.mark() if self.effects is not None else 0

    def since(self, mark: int) -> list[object]:
        return self.effects.since(mark) if self.effects is not None else []


class _Baseline(Generic[C]):
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


async def _uninterrupted(h: _Harness[C]) -> _Baseline[C]:
    cursors: list[C] = []
    start = h.mark()
    marks = [0]
    sink = _CrashableSink()
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
    return _Baseline(cursors, job.outcome.cursor, written, marks, sink.items)


async def _crash(
    h: _Harness[C], base: _Baseline[C], k: int, sink: _CrashableSink
) -> tuple[MemoryStore, list[object]]:
    """Run the job until its k-th cursor is persisted and the work after it done, then crash.

    Returns the store as the crash left it and what the run wrote before it crashed; *sink*
    holds the outputs delivered before it.
    """
    n = len(base.cursors)
    store = _CrashableStore()
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
                            f"same arguments, its {_ordinal(i)} cursor was {_show(cursor)}, but "
                            f"the first run's was {_show(base.cursors[i - 1])}. assert_resumes "
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


def _explain_crash(h: _Harness[C], base: _Baseline[C], k: int) -> str:
    n = len(base.cursors)
    head = (
        f"{h.name} does not resume correctly after a crash at yield {k} of {n}.\n"
        f"  The crash: its {_ordinal(k)} cursor {_show(base.cursors[k - 1])} was persisted, "
    )
    if k < n:
        head += f"then the job went on to yield {_show(base.cursors[k])} and the process died.\n"
    else:
        head += "then the job finished and the process died before recording the end.\n"
    return head


async def _resume(
    h: _Harness[C], base: _Baseline[C], k: int, store: MemoryStore, sink: _CrashableSink
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
                loaded = _show(job.cursor) if job.resumed else "nothing (a fresh start)"
            else:
                # Stop a resumed run that goes past the end, or that yields without progress.
                limit, steps = len(_progress(expected, persisted)) + 1, 2 * len(expected) + 10
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
            _explain_crash(h, base, k)
            + f"  The restart from cursor {_show(persisted)} raised {type(exc).__name__}: {exc}\n"
            f"  Reproduce just this crash with points=[{k}]."
        ) from exc
    if loaded is not None:
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  The restart loaded {loaded} instead of {_show(persisted)}: the cursor does "
            f"not survive the trip through the store (to JSON with cattrs as "
            f"{h.fn.cursor_type!r} and back). Yield values of the annotated cursor type (a "
            "tuple, not a list, for a tuple type), or pass converter= with hooks for it."
        )
    assert job.outcome is not None
    return actual, job.outcome.cursor, h.since(start)


def _progress(cursors: Sequence[C], after: C) -> list[C]:
    """Drop the cursors that repeat the one before them (*after* before the first): no progress."""
    kept: list[C] = []
    for cursor in cursors:
        if cursor != (kept[-1] if kept else after):
            kept.append(cursor)
    return kept


def _check_cursors(h: _Harness[C], base: _Baseline[C], k: int, yielded: list[C], final: C) -> None:
    resumed_from = base.cursors[k - 1]
    expected = _progress(base.cursors[k:], resumed_from)
    actual = _progress(yielded, resumed_from)
    if actual != expected:
        first = next(
            (i for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a),
            min(len(expected), len(actual)),
        )
        if first >= len(actual) and len(yielded) >= 2 * len(base.cursors[k:]) + 10:
            difference = (
                f"the resumed run kept yielding {_show(yielded[-1])} without progress, and was "
                f"stopped after {len(yielded)} yields"
            )
        elif first >= len(actual):
            missing = _show(expected[first])
            difference = f"the resumed run ended where the uninterrupted run yielded {missing}"
        elif first >= len(expected):
            difference = f"the resumed run yielded {_show(actual[first])} after the end"
        else:
            difference = f"expected {_show(expected[first])}, got {_show(actual[first])}"
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  The restart resumed from cursor {_show(resumed_from)} and yielded:\n"
            f"    expected (uninterrupted run): {_show_cursors(expected[first:])}\n"
            f"    actual (resumed run):         "
            f"{_show_cursors(actual[first:], more=len(actual) > len(expected))}\n"
            f"  First difference at the {_ordinal(first + 1)} cursor after resuming: "
            f"{difference}.\n"
            "  The cursor must carry all the progress the job needs to go on: a counter in a "
            "local variable, a page size or a filter kept outside the cursor is lost in a "
            f"crash.\n  Reproduce just this crash with points=[{k}]."
        )
    if final != base.final:
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  The resumed run ended at cursor {_show(final)}, the uninterrupted run at "
            f"{_show(base.final)}.\n  Reproduce just this crash with points=[{k}]."
        )


def _check_effects(
    h: _Harness[C], base: _Baseline[C], k: int, crashed: list[object], resumed: list[object]
) -> None:
    expected = _multiset(base.written)
    actual = _multiset(crashed) + _multiset(resumed)
    window = base.window(k)
    lost = expected - actual
    if lost:
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  Writes lost: the crashed and the resumed run together never wrote "
            f"{_listed(lost)} ({lost.total()} of {len(base.written)} writes of the "
            "uninterrupted run). The cursor moved past work that was not written yet (a "
            "buffer flushed later, a write after the yield?): yield a cursor only once what it "
            f"covers is written.\n  Reproduce just this crash with points=[{k}]."
        )
    extra = actual - expected
    outside = extra - _multiset(window)
    if outside:
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  Writes repeated beyond the re-run window: {_listed(outside)}. Only the work "
            f"after the persisted cursor may run twice (here {_listed(_multiset(window))}), "
            "but the resumed run redid earlier work too: the cursor it resumed from claims "
            f"less progress than was made.\n  Reproduce just this crash with points=[{k}]."
        )


def _check_outputs(h: _Harness[C], base: _Baseline[C], k: int, outputs: list[Any]) -> None:
    if outputs != base.outputs:
        raise AssertionError(
            _explain_crash(h, base, k)
            + f"  Its outputs were not delivered exactly once: the sink holds "
            f"{_show_cursors(outputs)} ({len(outputs)} items), the uninterrupted run's "
            f"{_show_cursors(base.outputs)} ({len(base.outputs)} items). Push outputs into "
            "`out` before the yield of the cursor that covers them, and only there.\n"
            f"  Reproduce just this crash with points=[{k}]."
        )


def _crash_points(points: int | Sequence[int] | None, n: int) -> list[int]:
    if points is None:
        return list(range(1, n + 1))
    if isinstance(points, int):
        if isinstance(points, bool) or points < 1:
            raise ValueError(f"points= must be a positive number of crash points, not {points!r}")
        if points >= n:
            return list(range(1, n + 1))
        if points == 1:
            return [(n + 1) // 2]
        return sorted({1 + round(i * (n - 1) / (points - 1)) for i in range(points)})
    chosen = sorted(set(points))
    bad = [p for p in chosen if not isinstance(p, int) or not 1 <= p <= n]
    if bad:
        raise ValueError(
            f"points= lists crash points {bad!r} outside this run's yields 1..{n}; a crash "
            "point k means: crash after the k-th cursor was persisted"
        )
    return chosen


async def assert_resumes(
    fn: JobFunction[Any, C],
    *args: Any,
    points: int | Sequence[int] | None = None,
    effects: Effects | None = None,
    **kwargs: Any,
) -> None:
    """Check that a job resumes correctly after a crash at any of its yields.

    Runs ``fn(*args, **kwargs)`` once uninterrupted and records its cursors. Then, for each
    crash point k, runs it again until its k-th cursor is persisted and the work after it is
    done, crashes it there (what was not persisted is lost; its ``finally`` blocks run, but
    what they write is not counted), resumes it on what the crash left in the store, and
    checks that the resumed run yields exactly the uninterrupted run's remaining cursors and
    ends where that run ended. A job with an outbox (an ``out`` parameter) delivers to a sink
    of the check's own, and every crash point must end with each of the uninterrupted run's
    outputs delivered exactly once, in order. A cursor equal to the one before it (a yield
    that made no progress, such as an empty last page) is not counted, in either run. Every
    run uses a fresh in-memory store and no timers or signal handlers; the store the job was
    declared with is never touched. The job must be deterministic given its arguments and cursor:
    feed it fixed test data.

    Args:
        fn: A function decorated with ``@resumable``.
        *args: Positional arguments for the job.
        points: Crash at every yield (``None``), at this many evenly spread yields (an
            ``int``; always the first and the last), or at these yields (numbers from 1).
        effects: What the job writes, to check that a crash loses no write and repeats only
            the work after the persisted cursor: a list the job appends to, or a callable
            returning everything written so far. Record every write, repeats included.
        **kwargs: Keyword arguments for the job (``cursor=`` sets the fresh-start cursor).

    Raises:
        AssertionError: A resumed run diverged (the message names the crash point, the
            cursor it resumed from, the expected and the actual next cursors), the job is
            not deterministic, it yielded no cursor, or a crash lost or repeated writes.
        TypeError: *fn* is not decorated with ``@resumable``.
    """
    if not isinstance(fn, JobFunction):
        raise TypeError(
            f"assert_resumes takes a function decorated with @resumable, not {fn!r}; "
            "decorate it, e.g. `assert_resumes(resumable(my_generator), ...)`"
        )
    harness = _Harness(fn, args, kwargs, _EffectLog(effects) if effects is not None else None)
    base = await _uninterrupted(harness)
    n = len(base.cursors)
    if n == 0:
        raise AssertionError(
            f"{harness.name} yielded no cursor, so there is no point to crash it at; pass "
            "arguments that give it some work"
        )
    for k in _crash_points(points, n):
        sink = _CrashableSink()
        store, crashed = await _crash(harness, base, k, sink)
        actual, final, resumed = await _resume(harness, base, k, store, sink)
        _check_cursors(harness, base, k, actual, final)
        _check_outputs(harness, base, k, sink.items)
        if effects is not None:
            _check_effects(harness, base, k, crashed, resumed)


class FailingStore:
    """A store that fails on purpose, to test retries and error paths.

    Wraps another store (a fresh `MemoryStore` by default) and makes chosen calls raise
    before they touch it, as a real backend that is down would. Which calls fail is decided
    per call of the failing *operations* (saves only, by default), and the modes add up:
    ``FailingStore(first=2)`` fails the first two saves, ``every=3`` every third one,
    ``after=5.0`` every save from five seconds after it was made, ``forever=True`` all of
    them; `fail_next` fails the next few from now. The options are attributes: change them
    while a job runs (``store.forever = False`` heals it).

    Args:
        inner: The store that holds the records.
        first: Fail the first N calls.
        every: Fail every Nth call (the Nth, the 2Nth, ...).
        after: Fail every call once this many seconds have passed since the store was made.
        forever: Fail every call.
        error: What a failure raises: an exception (a fresh copy each time) or a callable
            returning one. Default: `ConnectionError`. A full disk is
            ``lambda: OSError(errno.ENOSPC, "No space left on device")``.
        delay: Seconds a failing call waits before it raises, as a slow backend would.
        lands: A failing save still reaches the inner store before it raises, as a write
            whose reply was lost.
        operations: Which operations can fail: ``"save"``, ``"delete"``, ``"load"``,
            ``"keys"``.

    Attributes:
        calls: Calls of the failing operations so far.
        failures: How many of them failed.
    """

    def __init__(
        self,
        inner: Store | None = None,
        *,
        first: int = 0,
        every: int | None = None,
        after: float | None = None,
        forever: bool = False,
        error: BaseException | Callable[[], BaseException] | None = None,
        delay: float = 0.0,
        lands: bool = False,
        operations: Collection[Operation] = _SAVES,
    ) -> None:
        if every is not None and every < 1:
            raise ValueError(f"every= must be a positive number of calls, not {every!r}")
        unknown = set(operations) - {"load", "save", "delete", "keys"}
        if unknown:
            raise ValueError(f"operations= has unknown operations {sorted(unknown)!r}")
        self.inner: Store = inner if inner is not None else MemoryStore()
        self.first = first
        self.every = every
        self.after = after
        self.forever = forever
        self.error = error
        self.delay = delay
        self.lands = lands
        self.operations = frozenset(operations)
        self.calls = 0
        self.failures = 0
        self._pending = 0
        self._made = time.monotonic()

    def __repr__(self) -> str:
        return f"FailingStore({self.inner!r})"

    def fail_next(self, n: int = 1) -> None:
        """Fail the next *n* calls of the failing operations, whatever the other options say."""
        self._pending += n

    async def open(self) -> None:
        """Open the inner store, if it needs opening."""
        opener = getattr(self.inner, "open", None)
        if opener is not None:
            await opener()

    async def load(self, key: str) -> bytes | None:
        """Return the inner store's record for *key*, unless this call fails."""
        await self._maybe_fail("load", key)
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Save to the inner store, unless this call fails (after landing, with ``lands``)."""
        if not self._fails("save"):
            await self.inner.save(key, data, guard=guard)
            return
        if self.lands:
            await self.inner.save(key, data, guard=guard)
        await self._raise("save", key)

    async def delete(self, key: str) -> None:
        """Delete from the inner store, unless this call fails."""
        await self._maybe_fail("delete", key)
        await self.inner.delete(key)

    async def keys(self) -> list[str]:
        """Return the inner store's keys, unless this call fails."""
        await self._maybe_fail("keys", None)
        return await self.inner.keys()

    def _fails(self, operation: Operation) -> bool:
        if operation not in self.operations:
            return False
        self.calls += 1
        if self._pending > 0:
            self._pending -= 1
            return True
        return (
            self.forever
            or self.calls <= self.first
            or (self.every is not None and self.calls % self.every == 0)
            or (self.after is not None and time.monotonic() - self._made >= self.after)
        )

    async def _maybe_fail(self, operation: Operation, key: str | None) -> None:
        if self._fails(operation):
            await self._raise(operation, key)

    async def _raise(self, operation: Operation, key: str | None) -> None:
        self.failures += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.error is None:
            about = f" of key {key!r}" if key is not None else ""
            raise ConnectionError(
                f"{self!r}: injected failure of {operation}{about} (call {self.calls})"
            )
        if isinstance(self.error, BaseException):
            raise copy.copy(self.error)
        raise self.error()
