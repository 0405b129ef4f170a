"""`resumable.testing`: assert_resumes, FailingStore, FailingSink and the pytest fixtures."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from resumable import MemoryStore, StaleWriterError, StoreError, _pytest_plugin, job, resumable
from resumable.testing import FailingSink, FailingStore, MemorySink, assert_resumes

ROOT = Path(__file__).parent.parent


@resumable
async def count_to(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
    """A job whose cursor carries all its progress."""
    for i in range(cursor, n):
        yield i + 1


@attrs.frozen
class Page:
    """A cursor with two parts, to show structured cursors resume too."""

    offset: int
    size: int


# -- assert_resumes: jobs that resume correctly ------------------------------------------------


async def test_passes_on_a_job_whose_cursor_carries_all_its_progress() -> None:
    """A correct job passes, crash at every yield included."""
    await assert_resumes(count_to, 30)


async def test_passes_on_a_structured_cursor_that_carries_the_page_size() -> None:
    """An attrs cursor that keeps an adaptive page size survives every crash."""

    @resumable
    async def pages(total: int, *, cursor: Page = Page(0, 1)) -> AsyncIterator[Page]:
        offset, size = cursor.offset, cursor.size
        while offset < total:
            offset += size
            size = min(size * 2, 8)
            yield Page(offset, size)

    await assert_resumes(pages, 50)


async def test_passes_arguments_and_the_fresh_start_cursor_through() -> None:
    """Positional and keyword arguments reach the job; ``cursor=`` sets where a fresh run starts."""
    seen: list[tuple[int, int, str]] = []

    @resumable(key=lambda n, *, label: f"count-{label}")
    async def labelled(n: int, *, label: str, cursor: int = 0) -> AsyncIterator[int]:
        seen.append((n, cursor, label))
        for i in range(cursor, n):
            yield i + 1

    await assert_resumes(labelled, 6, label="x", cursor=3, points=[1])

    expected = [(6, 3, "x"), (6, 3, "x"), (6, 4, "x")]

    assert expected == seen


async def test_crashes_at_every_yield_by_default() -> None:
    """Without points=, the job is crashed once after each of its cursors."""
    starts: list[int] = []

    @resumable
    async def counted(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        starts.append(cursor)
        for i in range(cursor, n):
            yield i + 1

    await assert_resumes(counted, 5)

    expected = [0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5]  # the first run, then (crashed, resumed) per yield

    assert expected == starts


@pytest.mark.parametrize(
    ("points", "resumed_from"),
    [(3, [1, 5, 10]), (1, [5]), (50, list(range(1, 11))), ([7, 2, 7], [2, 7])],
)
async def test_points_picks_evenly_spread_or_listed_crash_points(
    points: int | list[int], resumed_from: list[int]
) -> None:
    """``points=N`` spreads N crashes over the yields, both ends included; a list names them."""
    starts: list[int] = []

    @resumable
    async def counted(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        starts.append(cursor)
        for i in range(cursor, n):
            yield i + 1

    await assert_resumes(counted, 10, points=points)

    assert resumed_from == [s for s in starts if s != 0]


@pytest.mark.parametrize("points", [0, -1, [0], [11], [1, 12]])
async def test_points_outside_the_run_are_refused(points: int | list[int]) -> None:
    """A crash point that the run cannot reach is a mistake in the test, said as ValueError."""
    with pytest.raises(ValueError, match="points="):
        await assert_resumes(count_to, 10, points=points)


async def test_never_touches_the_store_the_job_was_declared_with() -> None:
    """Every run uses a store of its own: the declared one sees no call at all."""
    declared = FailingStore(forever=True, operations=("load", "save", "delete", "keys"))

    @resumable(store=declared)
    async def stored(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            yield i + 1

    await assert_resumes(stored, 5)
    calls = declared.calls

    assert not calls


async def test_installs_no_signal_handlers() -> None:
    """The runs attach no triggers: SIGTERM keeps the handler it had while the job runs."""
    before = signal.getsignal(signal.SIGTERM)
    during: list[object] = []

    @resumable
    async def watched(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            during.append(signal.getsignal(signal.SIGTERM))
            yield i + 1

    await assert_resumes(watched, 3)

    assert {before} == set(during)


async def test_finally_blocks_after_the_crash_do_not_count_as_writes() -> None:
    """Writes of a ``finally`` block after the crash do not count: a dead process writes nothing."""
    sink: list[str] = []

    @resumable
    async def closing(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        try:
            for i in range(cursor, n):
                sink.append(f"row {i}")
                yield i + 1
        finally:
            sink.append("closed")

    await assert_resumes(closing, 5, effects=sink)


async def test_a_crash_point_costs_work_in_proportion_to_the_run() -> None:
    """A few crash points in a long run stay cheap: each replays the run about once (its
    speed is the benchmarks' business; what a test can check is the work it does)."""
    yielded = 0

    @resumable
    async def counted(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        nonlocal yielded
        for i in range(cursor, n):
            yielded += 1
            yield i + 1

    await assert_resumes(counted, 2000, points=10)

    assert 2000 * 10 <= yielded <= 2000 * (10 + 2) * 2


# -- assert_resumes: jobs that do not --------------------------------------------------------------


async def test_catches_a_counter_kept_outside_the_cursor() -> None:
    """A running total in a local variable is lost in a crash; the message says where and how."""

    @resumable
    async def totals(n: int, *, cursor: tuple[int, int] = (0, 0)) -> AsyncIterator[tuple[int, int]]:
        position, _ = cursor
        total = 0
        for i in range(position, n):
            total += i
            yield (i + 1, total)

    with pytest.raises(AssertionError) as caught:
        await assert_resumes(totals, 10)

    message = str(caught.value)
    for expected in [
        "job 'test_catches_a_counter_kept_outside_the_cursor.totals' does not resume",
        "after a crash at yield 2 of 10",
        "its 2nd cursor (2, 1) was persisted, then the job went on to yield (3, 3)",
        "resumed from cursor (2, 1)",
        "expected (uninterrupted run): [(3, 3), (4, 6), (5, 10), (6, 15), (7, 21), ...]",
        "actual (resumed run):         [(3, 2), (4, 5), (5, 9), (6, 14), (7, 20), ...]",
        "First difference at the 1st cursor after resuming: expected (3, 3), got (3, 2)",
        "points=[2]",
    ]:
        assert expected in message


async def test_catches_a_page_size_kept_outside_the_cursor() -> None:
    """An adaptive page size that the cursor forgets sends the resumed run to other offsets."""

    @resumable
    async def pages(total: int, *, cursor: int = 0) -> AsyncIterator[int]:
        size = 1
        while cursor < total:
            cursor = min(cursor + size, total)
            size *= 2
            yield cursor

    with pytest.raises(AssertionError, match=r"crash at yield 1 of 6") as caught:
        await assert_resumes(pages, 50)

    assert "expected 3, got 2" in str(caught.value)


async def test_catches_a_job_that_yields_again_after_its_end() -> None:
    """Resumed from its last cursor, a job must yield nothing more and end where it ended."""

    @resumable
    async def restarts(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            yield i + 1
        if cursor == n:
            yield n + 1

    with pytest.raises(AssertionError, match="crash at yield 4 of 4") as caught:
        await assert_resumes(restarts, 4)

    assert "the resumed run yielded 5 after the end" in str(caught.value)


async def test_a_yield_without_progress_is_not_counted() -> None:
    """Yielding the cursor it already had (an empty last page, say) is no progress, not a bug."""

    @resumable
    async def polls(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            yield i + 1
            yield i + 1
        yield max(cursor, n)  # the last poll finds nothing new

    await assert_resumes(polls, 4)


async def test_cuts_off_a_resumed_run_that_makes_no_progress() -> None:
    """A resumed run that yields the same cursor forever is stopped and reported."""

    @resumable
    async def stuck(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        resumed = cursor > 0
        while cursor < n:
            cursor += 0 if resumed else 1
            yield cursor

    with pytest.raises(AssertionError, match="kept yielding 1 without progress"):
        await assert_resumes(stuck, 3)


async def test_cuts_off_a_resumed_run_that_never_ends() -> None:
    """A resumed run that yields past the uninterrupted run's end is stopped and reported."""

    @resumable
    async def runaway(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        resumed = cursor > 0
        while cursor < n or resumed:
            cursor += 1
            yield cursor

    with pytest.raises(AssertionError, match="after the end"):
        await assert_resumes(runaway, 3)


async def test_catches_a_job_that_is_not_deterministic() -> None:
    """A job whose cursors change from run to run cannot be checked, and is told so."""
    runs: list[int] = []

    @resumable
    async def drifting(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        runs.append(cursor)
        for i in range(cursor, n):
            yield i + len(runs)

    with pytest.raises(AssertionError, match="is not deterministic") as caught:
        await assert_resumes(drifting, 5)

    assert "its 1st cursor was 2, but the first run's was 1" in str(caught.value)


async def test_catches_a_cursor_that_does_not_survive_the_store() -> None:
    """A cursor that comes back from JSON as something else (a list for a tuple) is reported."""

    @resumable
    async def listy(n: int, *, cursor: tuple[int, int] = (0, 0)) -> AsyncIterator[tuple[int, int]]:
        for i in range(cursor[0], n):
            # The bug under test: one list among tuples. The engine checks the first cursor
            # of each run; this one is the second, so only the trip through the store shows it.
            yield [i + 1, 0] if i == 1 else (i + 1, 0)  # type: ignore[misc]

    with pytest.raises(AssertionError, match="does not survive the trip") as caught:
        await assert_resumes(listy, 3, points=[2])

    assert "crash at yield 2 of 3" in str(caught.value)
    assert "loaded (2, 0) instead of [2, 0]" in str(caught.value)


async def test_an_error_of_the_resumed_run_is_reported_with_its_cause() -> None:
    """A job that raises only when resumed fails the check, with the error chained."""

    @resumable
    async def fragile(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        if cursor:
            raise KeyError(cursor)
        for i in range(cursor, n):
            yield i + 1

    with pytest.raises(AssertionError, match="restart from cursor 1 raised KeyError") as caught:
        await assert_resumes(fragile, 3)

    assert isinstance(caught.value.__cause__, KeyError)


async def test_an_error_of_the_uninterrupted_run_propagates_unchanged() -> None:
    """A job that fails on its own is not a resume bug: its exception propagates, with a note."""

    @resumable
    async def broken(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as caught:
        await assert_resumes(broken, 3)

    assert any("uninterrupted run" in note for note in caught.value.__notes__)


async def test_a_job_that_yields_nothing_fails_the_check() -> None:
    """No cursor, no crash point: a check that checks nothing must not pass silently."""
    with pytest.raises(AssertionError, match="yielded no cursor"):
        await assert_resumes(count_to, 0)


async def test_refuses_a_function_that_is_not_decorated() -> None:
    """assert_resumes needs the @resumable function, and says so."""

    async def plain(*, cursor: int = 0) -> AsyncIterator[int]:
        yield cursor

    with pytest.raises(TypeError, match="decorated with @resumable"):
        await assert_resumes(plain)  # type: ignore[arg-type]


# -- assert_resumes: side effects ---------------------------------------------------------------


async def test_effects_pass_when_only_the_work_after_the_cursor_repeats() -> None:
    """Writes after the persisted cursor may run twice: that is at-least-once, and it passes."""
    sink: list[str] = []

    @resumable
    async def copy_rows(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for start in range(cursor, n, 3):
            sink.extend(f"row {i}" for i in range(start, min(start + 3, n)))
            yield min(start + 3, n)

    await assert_resumes(copy_rows, 10, effects=sink)
    await assert_resumes(copy_rows, 10, effects=lambda: sink)


async def test_effects_may_be_unhashable() -> None:
    """Written records may be dicts: they are compared by value."""
    sink: list[dict[str, int]] = []

    @resumable
    async def dicts(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            sink.append({"row": i})
            yield i + 1

    await assert_resumes(dicts, 4, effects=sink)


async def test_effects_catch_writes_lost_in_a_buffer() -> None:
    """A cursor yielded before its rows were flushed loses them in a crash."""
    sink: list[int] = []

    @resumable
    async def buffered(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        buffer: list[int] = []
        for i in range(cursor, n):
            buffer.append(i)
            if len(buffer) == 3:
                sink.extend(buffer)
                buffer.clear()
            yield i + 1
        sink.extend(buffer)

    with pytest.raises(AssertionError, match="Writes lost") as caught:
        await assert_resumes(buffered, 7, effects=sink)

    assert "crash at yield 1 of 7" in str(caught.value)
    assert "never wrote [0]" in str(caught.value)


async def test_effects_catch_work_repeated_before_the_cursor() -> None:
    """Work redone from before the persisted cursor (here, a header) is reported."""
    sink: list[str] = []

    @resumable
    async def with_header(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        sink.append("header")
        for i in range(cursor, n):
            sink.append(f"row {i}")
            yield i + 1

    with pytest.raises(AssertionError, match="repeated beyond the re-run window") as caught:
        await assert_resumes(with_header, 4, effects=sink)

    assert "['header']" in str(caught.value)
    assert "crash at yield 1 of 4" in str(caught.value)


# -- FailingStore -----------------------------------------------------------------------------


async def _save_results(store: FailingStore, times: int) -> list[bool]:
    results = []
    for i in range(times):
        try:
            await store.save("k", str(i).encode())
        except ConnectionError:
            results.append(False)
        else:
            results.append(True)
    return results


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"first": 2}, [False, False, True, True, True, True]),
        ({"every": 3}, [True, True, False, True, True, False]),
        ({"forever": True}, [False] * 6),
        ({"after": 3600.0}, [True] * 6),
        ({"after": 0.0}, [False] * 6),
        ({"first": 1, "every": 2}, [False, False, True, False, True, False]),
    ],
)
async def test_failing_store_fails_the_calls_its_options_pick(
    options: dict[str, object], expected: list[bool]
) -> None:
    """first=, every=, after= and forever= pick which saves fail; the modes add up."""
    store = FailingStore(**options)  # type: ignore[arg-type]

    actual = await _save_results(store, 6)

    assert expected == actual
    assert (6, expected.count(False)) == (store.calls, store.failures)


async def test_failing_store_starts_failing_after_its_delay() -> None:
    """With after=, saves work until the delay has passed, then fail."""
    store = FailingStore(after=0.05)
    deadline = time.monotonic() + 5
    while await _save_results(store, 1) == [True]:
        assert time.monotonic() < deadline, "after=0.05 never started failing"
        await asyncio.sleep(0.01)
    expected = [False]

    assert expected == await _save_results(store, 1)


async def test_failing_store_heals_when_told() -> None:
    """Options are attributes: clearing forever= heals the store; fail_next() breaks it again."""
    store = FailingStore(forever=True)
    broken = await _save_results(store, 1)
    store.forever = False
    healed = await _save_results(store, 1)
    store.fail_next(2)
    again = await _save_results(store, 3)
    expected = ([False], [True], [False, False, True])

    assert expected == (broken, healed, again)


async def test_failing_store_writes_nothing_when_a_call_fails() -> None:
    """A failing save leaves the inner store's record as it was."""
    inner = MemoryStore()
    await inner.save("k", b"old")
    store = FailingStore(inner, forever=True)

    with pytest.raises(ConnectionError, match=r"injected failure of save of key 'k' \(call 1\)"):
        await store.save("k", b"new")
    expected = b"old"

    assert expected == await inner.load("k")


async def test_failing_store_lands_the_write_of_a_lost_reply_when_asked() -> None:
    """With lands=True the failing save reaches the inner store, then raises."""
    store = FailingStore(forever=True, lands=True)

    with pytest.raises(ConnectionError):
        await store.save("k", b"new")
    expected = b"new"

    assert expected == await store.inner.load("k")


async def test_failing_store_raises_a_fresh_copy_of_the_given_error() -> None:
    """error= takes an exception (copied per failure, errno kept) or a callable making one."""
    store = FailingStore(forever=True, error=OSError(errno.ENOSPC, "No space left on device"))
    raised = []
    for _ in range(2):
        with pytest.raises(OSError, match="No space left") as caught:
            await store.save("k", b"x")
        raised.append(caught.value)

    expected = [errno.ENOSPC, errno.ENOSPC]

    assert expected == [e.errno for e in raised]
    assert raised[0] is not raised[1]

    made = FailingStore(forever=True, error=lambda: TimeoutError("slow"))
    with pytest.raises(TimeoutError, match="slow"):
        await made.save("k", b"x")


async def test_failing_store_waits_before_a_failure_when_delayed() -> None:
    """delay= makes a failing call take at least that long, as a slow backend would."""
    store = FailingStore(forever=True, delay=0.05)
    started = time.monotonic()

    with pytest.raises(ConnectionError):
        await store.save("k", b"x")

    assert time.monotonic() - started >= 0.05


async def test_failing_store_fails_only_the_operations_it_is_given() -> None:
    """operations= picks what fails; the other operations pass through to the inner store."""
    store = FailingStore(forever=True, operations=("load", "keys"))
    await store.save("k", b"x")
    await store.delete("nothing")

    with pytest.raises(ConnectionError):
        await store.load("k")
    with pytest.raises(ConnectionError):
        await store.keys()
    expected = ["k"]

    assert expected == await store.inner.keys()


async def test_failing_store_passes_the_guard_through() -> None:
    """A save that is let through still runs the fencing guard, and a veto writes nothing."""
    store = FailingStore()
    await store.save("k", b"old")

    def veto(current: bytes | None) -> None:
        raise LookupError(current)

    with pytest.raises(LookupError):
        await store.save("k", b"new", guard=veto)
    expected = b"old"

    assert expected == await store.load("k")


def test_failing_store_refuses_unknown_options() -> None:
    """Typos in operations= and a non-positive every= fail at once."""
    with pytest.raises(ValueError, match="unknown operations"):
        FailingStore(operations=("sav",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every="):
        FailingStore(every=0)


async def test_a_job_rides_out_a_store_that_fails_a_few_times() -> None:
    """The engine retries a failing store: two failed writes do not fail the run."""
    store = FailingStore(first=2)
    async with job("flaky", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)
        await j.save()

    expected = (2, 1)

    assert expected == (store.failures, j.outcome.cursor if j.outcome else None)


async def test_a_job_reports_a_store_that_stays_down_as_store_error() -> None:
    """A save that keeps failing raises StoreError with the store's own error chained."""
    store = FailingStore(error=OSError(errno.ENOSPC, "No space left on device"))
    async with job("full", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)
        await j.save()
        store.forever = True
        j.advance(2)
        with pytest.raises(StoreError) as caught:
            await j.save(timeout=0.1)
        store.forever = False

    cause = caught.value.__cause__
    expected = errno.ENOSPC

    assert isinstance(cause, OSError)
    assert expected == cause.errno


# -- the pytest plugin --------------------------------------------------------------------------


def test_the_plugin_is_registered_by_installing_the_package(
    request: pytest.FixtureRequest,
) -> None:
    """The pytest11 entry point loads the plugin; nothing in conftest.py does."""
    assert _pytest_plugin is request.config.pluginmanager.get_plugin("resumable")


async def test_memory_store_fixture_is_fresh(memory_store: MemoryStore) -> None:
    """memory_store is an empty MemoryStore."""
    keys = await memory_store.keys()

    assert isinstance(memory_store, MemoryStore)
    assert not keys


async def test_failing_store_fixture_wraps_the_memory_store(
    failing_store: Callable[..., FailingStore], memory_store: MemoryStore
) -> None:
    """failing_store(...) takes FailingStore's options and wraps the test's memory_store."""
    store = failing_store(first=1)
    other = failing_store(inner=MemoryStore())

    with pytest.raises(ConnectionError):
        await store.save("k", b"x")
    await store.save("k", b"y")
    expected = b"y"

    assert memory_store is store.inner
    assert expected == await memory_store.load("k")
    assert memory_store is not other.inner


async def test_platform_events_fixture_is_serving(platform_events: object) -> None:
    """platform_events is a started stand-in of the platform's websocket on 127.0.0.1."""
    url = getattr(platform_events, "url", "")

    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", url)


# -- the examples' jobs -------------------------------------------------------------------------


def load_example(name: str) -> ModuleType:
    """Import examples/NAME.py as a module of its own."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_demo_job_resumes_after_any_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/demo.py's job passes the check (without its pause between items)."""
    demo = load_example("demo")
    monkeypatch.setattr(demo, "DELAY", 0)

    await assert_resumes(demo.process)


async def test_the_backfill_job_resumes_after_any_crash() -> None:
    """examples/backfill.py's job passes the check against its fake API, writes included."""
    backfill = load_example("backfill")
    backfill.FakeApi.outage_at = None
    written: list[int] = []

    class LoggedDatabase(backfill.Database):  # type: ignore[name-defined,misc]
        async def upsert(self, rows: list[dict[str, object]]) -> None:
            written.extend(int(str(row["id"])) for row in rows)
            await super().upsert(rows)

    with backfill.fake_api() as api:
        await assert_resumes(backfill.backfill, api, LoggedDatabase(), effects=written)


async def test_the_concurrent_crawl_resumes_after_any_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/concurrent_crawl.py's job passes the check once its fetches finish in order.

    With random delays its watermarks differ from run to run, which assert_resumes rightly
    calls non-deterministic; a test gives it fetches that take no time.
    """
    crawl = load_example("concurrent_crawl")
    fetched: list[str] = []

    async def fetch(url: str) -> None:
        await asyncio.sleep(0)
        fetched.append(url)

    monkeypatch.setattr(crawl, "fetch", fetch)

    await assert_resumes(crawl.crawl, crawl.URLS[:60], points=20, effects=fetched)


# -- FailingSink and MemorySink ---------------------------------------------------------------


async def test_failing_sink_fails_the_appends_its_options_pick() -> None:
    """The options of FailingStore, on appends: first=2 fails two, then appends land."""
    sink = FailingSink(first=2)
    results = []
    for n in range(4):
        try:
            await sink.append([n], len(sink.inner.items))  # type: ignore[attr-defined]
        except ConnectionError:
            results.append(False)
        else:
            results.append(True)

    assert [False, False, True, True] == results
    assert [2, 3] == sink.inner.items  # type: ignore[attr-defined]
    assert (4, 2) == (sink.calls, sink.failures)


async def test_failing_sink_can_lose_the_reply_of_an_append_that_landed() -> None:
    """With lands=True a failing append reaches the inner sink, then raises."""
    sink = FailingSink(lands=True, forever=True, error=TimeoutError("the reply was lost"))

    with pytest.raises(TimeoutError, match="reply was lost"):
        await sink.append(["a", "b"], 0)

    assert ["a", "b"] == await sink.read(0, 10)


async def test_failing_sink_fails_reads_and_counts_when_told() -> None:
    """operations= picks which calls can fail; the others pass through."""
    sink = FailingSink(MemorySink(["x"]), forever=True, operations=("read", "count"))
    await sink.append(["y"], 1)

    with pytest.raises(ConnectionError, match=r"injected failure of read from position 0"):
        await sink.read(0, 10)
    with pytest.raises(ConnectionError, match="injected failure of count"):
        await sink.count()

    assert ["x", "y"] == sink.inner.items  # type: ignore[attr-defined]


async def test_memory_sink_refuses_an_append_at_the_wrong_position() -> None:
    """MemorySink checks start as a transaction would: StaleWriterError, nothing added."""
    sink = MemorySink([1, 2])

    with pytest.raises(StaleWriterError, match="holds 2 item"):
        await sink.append([3], 1)

    assert ([1, 2], "MemorySink(<2 items>)") == (sink.items, repr(sink))
