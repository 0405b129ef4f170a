"""`assert_resumes`: crash a job at every yield (or a sample of them) and check it resumes.

It runs the job once uninterrupted, then crashes it at each crash point, resumes it on what
the crash left in the store, and checks that it carries on exactly where the uninterrupted
run went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from resumable._declared import Declared
from resumable.testing._harness import (
    Baseline,
    CrashableSink,
    EffectLog,
    Effects,
    Harness,
    crash,
    distinct_progress,
    explain_crash,
    ordinal,
    resume,
    show,
    show_cursors,
    uninterrupted,
)

__all__ = ["Effects", "assert_resumes"]

C = TypeVar("C")


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
    return show_cursors(items)


def _check_cursors(h: Harness[C], base: Baseline[C], k: int, yielded: list[C], final: C) -> None:
    resumed_from = base.cursors[k - 1]
    expected = distinct_progress(base.cursors[k:], resumed_from)
    actual = distinct_progress(yielded, resumed_from)
    if actual != expected:
        first = next(
            (i for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a),
            min(len(expected), len(actual)),
        )
        if first >= len(actual) and len(yielded) >= 2 * len(base.cursors[k:]) + 10:
            difference = (
                f"the resumed run kept yielding {show(yielded[-1])} without progress, and was "
                f"stopped after {len(yielded)} yields"
            )
        elif first >= len(actual):
            missing = show(expected[first])
            difference = f"the resumed run ended where the uninterrupted run yielded {missing}"
        elif first >= len(expected):
            difference = f"the resumed run yielded {show(actual[first])} after the end"
        else:
            difference = f"expected {show(expected[first])}, got {show(actual[first])}"
        raise AssertionError(
            explain_crash(h, base, k)
            + f"  The restart resumed from cursor {show(resumed_from)} and yielded:\n"
            f"    expected (uninterrupted run): {show_cursors(expected[first:])}\n"
            f"    actual (resumed run):         "
            f"{show_cursors(actual[first:], more=len(actual) > len(expected))}\n"
            f"  First difference at the {ordinal(first + 1)} cursor after resuming: "
            f"{difference}.\n"
            "  The cursor must carry all the progress the job needs to go on: a counter in a "
            "local variable, a page size or a filter kept outside the cursor is lost in a "
            f"crash.\n  Reproduce just this crash with points=[{k}]."
        )
    if final != base.final:
        raise AssertionError(
            explain_crash(h, base, k)
            + f"  The resumed run ended at cursor {show(final)}, the uninterrupted run at "
            f"{show(base.final)}.\n  Reproduce just this crash with points=[{k}]."
        )


def _check_effects(
    h: Harness[C], base: Baseline[C], k: int, crashed: list[object], resumed: list[object]
) -> None:
    expected = _multiset(base.written)
    actual = _multiset(crashed) + _multiset(resumed)
    window = base.window(k)
    lost = expected - actual
    if lost:
        raise AssertionError(
            explain_crash(h, base, k)
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
            explain_crash(h, base, k)
            + f"  Writes repeated beyond the re-run window: {_listed(outside)}. Only the work "
            f"after the persisted cursor may run twice (here {_listed(_multiset(window))}), "
            "but the resumed run redid earlier work too: the cursor it resumed from claims "
            f"less progress than was made.\n  Reproduce just this crash with points=[{k}]."
        )


def _check_outputs(h: Harness[C], base: Baseline[C], k: int, outputs: list[Any]) -> None:
    if outputs != base.outputs:
        raise AssertionError(
            explain_crash(h, base, k)
            + f"  Its outputs were not delivered exactly once: the sink holds "
            f"{show_cursors(outputs)} ({len(outputs)} items), the uninterrupted run's "
            f"{show_cursors(base.outputs)} ({len(base.outputs)} items). Push outputs into "
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
    fn: Declared[Any, C, Any],
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
    run uses a fresh in-memory store and no timers or signal handlers; the store the job
    was declared with is never touched. The job must be deterministic given its arguments
    and cursor: feed it fixed test data.

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
    if not isinstance(fn, Declared):
        raise TypeError(
            f"assert_resumes takes a function decorated with @resumable, not {fn!r}; "
            "decorate it, e.g. `assert_resumes(resumable(my_generator), ...)`"
        )
    harness = Harness(fn, args, kwargs, EffectLog(effects) if effects is not None else None)
    base = await uninterrupted(harness)
    n = len(base.cursors)
    if n == 0:
        raise AssertionError(
            f"{harness.name} yielded no cursor, so there is no point to crash it at; pass "
            "arguments that give it some work"
        )
    for k in _crash_points(points, n):
        sink = CrashableSink()
        store, crashed = await crash(harness, base, k, sink)
        actual, final, resumed = await resume(harness, base, k, store, sink)
        _check_cursors(harness, base, k, actual, final)
        _check_outputs(harness, base, k, sink.items)
        if effects is not None:
            _check_effects(harness, base, k, crashed, resumed)
