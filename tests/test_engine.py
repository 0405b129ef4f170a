"""The engine's rules: when state is written, by whom, and how a run ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import CountingStore, FlakyStore, wait_until

from resumable import (
    CorruptStateError,
    FileStore,
    InvalidOptionError,
    MemoryStore,
    StaleWriterError,
    StoreError,
    job,
    resumable,
)
from resumable._envelope import parse
from resumable._phase import Phase
from resumable.testing import fast_timing


def cursors_of(store: CountingStore) -> list[object]:
    return [json.loads(data)["cursor"] for data in store.writes]


async def test_job_context_manager_resumes_and_completes():
    """job() hands the resume point in .cursor and writes `completed` on a clean exit."""
    store = MemoryStore()
    async with job("export", cursor=0, store=store, triggers=[]) as j:
        assert (0, False) == (j.cursor, j.resumed)
        for i in range(j.cursor, 3):
            j.advance(i + 1)

    async with job("export", cursor=0, store=store, triggers=[]) as again:
        resumed = (again.cursor, again.resumed)
    record = parse(await store.load("export") or b"", "export", store)

    assert (3, True) == resumed
    assert ("completed", 3) == (record["status"], record["cursor"])
    assert again.outcome is not None
    assert 3 == again.outcome.resumed_from


async def test_job_context_manager_failure_writes_failed_and_reraises():
    """An exception leaving the block is persisted as `failed` and propagates unchanged."""
    store = MemoryStore()
    error = KeyError("x")
    with pytest.raises(KeyError) as caught:
        async with job("export", cursor=0, store=store, triggers=[]) as j:
            j.advance(5)
            raise error
    record = parse(await store.load("export") or b"", "export", store)

    assert error is caught.value
    assert ("failed", 5) == (record["status"], record["cursor"])


async def test_job_needs_a_cursor_type_when_the_default_is_none():
    """job(key, cursor=None) cannot guess the type and says how to give it."""
    with pytest.raises(TypeError, match="cursor_type="):
        job("k", cursor=None)

    async with job("k", cursor=None, cursor_type=int | None, store=MemoryStore(), triggers=[]) as j:
        j.advance(4)
    assert j.outcome is not None
    assert 4 == j.outcome.cursor


async def test_every_n_yields_writes_the_latest_cursor():
    """every=N saves every N yields, even from a generator that never awaits."""
    store = CountingStore()

    @resumable(key="every", store=store, every=3, interval=None, triggers=[])
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 10):
            yield i + 1

    outcome = await numbers()

    assert [0, 3, 6, 9, 10] == cursors_of(store)
    assert 5 == outcome.saves


async def test_interval_writes_on_a_timer_and_only_when_something_changed():
    """The timer writes the latest cursor; ticks with nothing new write nothing."""
    store = CountingStore()
    step = asyncio.Event()
    async with job("timer", cursor=0, store=store, interval=0.01, triggers=[]) as j:
        j.advance(1)
        await wait_until(lambda: len(store.writes) == 2)
        quiet_since = len(store.writes)
        await asyncio.sleep(0.05)  # several ticks with no change
        writes_while_quiet = len(store.writes) - quiet_since
        j.advance(2)
        j.advance(3)
        await wait_until(lambda: len(store.writes) == 3)
        step.set()

    assert 0 == writes_while_quiet
    assert [0, 1, 3, 3] == cursors_of(store)


async def test_request_save_is_coalesced_and_skips_unchanged_state():
    """Many requests while nothing changed make no write; after a change, one."""
    store = CountingStore()
    async with job("coalesce", cursor=0, store=store, interval=None, triggers=[]) as j:
        for _ in range(5):
            j.request_save()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        unchanged = len(store.writes)
        j.advance(1)
        for _ in range(5):
            j.request_save()
        await wait_until(lambda: len(store.writes) == 2)

    assert 1 == unchanged
    assert [0, 1, 1] == cursors_of(store)


async def test_at_most_one_write_in_flight_and_the_latest_cursor_wins():
    """While a write is held up, newer cursors wait; then only the latest is written."""
    store = CountingStore()
    async with job("inflight", cursor=0, store=store, interval=None, triggers=[]) as j:
        store.gate = asyncio.Event()
        j.advance(1)
        j.request_save()
        await wait_until(lambda: store.in_flight == 1)
        for i in range(2, 50):
            j.advance(i)
            j.request_save()
            await asyncio.sleep(0)
        store.gate.set()
        await wait_until(lambda: cursors_of(store)[-1] == 49)

    assert 1 == store.max_in_flight
    assert [0, 1, 49, 49] == cursors_of(store)


async def test_save_writes_now_and_returns_after_the_write():
    """`await j.save()` is durable when it returns."""
    store = MemoryStore()
    async with job("save", cursor=0, store=store, interval=None, triggers=[]) as j:
        j.advance(9)
        await j.save()
        record = parse(await store.load("save") or b"", "save", store)

    assert (9, "running") == (record["cursor"], record["status"])


async def test_seq_increases_by_one_per_write_and_owner_is_the_run():
    """Every write bumps seq by one and carries the run's owner id."""
    store = CountingStore()
    async with job("seq", cursor=0, store=store, interval=None, triggers=[]) as j:
        for i in range(1, 4):
            j.advance(i)
            await j.save()
    envelopes = [json.loads(data) for data in store.writes]

    assert [1, 2, 3, 4, 5] == [e["seq"] for e in envelopes]
    assert 1 == len({e["owner"] for e in envelopes})


async def test_a_newer_run_fences_out_the_older_one():
    """After a second run takes the key over, the first one's next write fails, writing nothing."""
    store = MemoryStore()
    with pytest.raises(StaleWriterError, match="taken over by another run"):
        async with job("fenced", cursor=0, store=store, interval=None, triggers=[]) as old:
            old.advance(10)
            await old.save()
            async with job("fenced", cursor=0, store=store, interval=None, triggers=[]) as new:
                resumed_at = new.cursor
                new.advance(20)
            old.advance(11)
            await old.save()
    record = parse(await store.load("fenced") or b"", "fenced", store)

    assert 10 == resumed_at
    assert (20, "completed") == (record["cursor"], record["status"])


async def test_a_stale_run_stops_its_generator_with_the_error():
    """A periodic write that finds the key taken over fails the decorated run."""
    store = MemoryStore()
    started = asyncio.Event()
    finished: list[bool] = []

    @resumable(key="stale", store=store, every=1, interval=None, triggers=[])
    async def stale(*, cursor: int = 0) -> AsyncIterator[int]:
        try:
            for i in range(cursor, 1000):
                if i == 3:
                    started.set()
                await asyncio.sleep(0.001)
                yield i + 1
        finally:
            finished.append(True)

    task = asyncio.ensure_future(stale())
    await started.wait()
    async with job("stale", cursor=0, store=store, interval=None, triggers=[]) as usurper:
        usurper.advance(500)
        await usurper.save()
        with pytest.raises(StaleWriterError):
            await task
    record = parse(await store.load("stale") or b"", "stale", store)

    assert [True] == finished
    assert 500 == record["cursor"]


async def test_a_deleted_record_is_not_written_back():
    """Resetting a key under a running job stops the job instead of resurrecting the record."""
    store = MemoryStore()
    with pytest.raises(StaleWriterError, match="was deleted"):
        async with job("gone", cursor=0, store=store, interval=None, triggers=[]) as j:
            await store.delete("gone")
            j.advance(1)
            await j.save()

    assert await store.load("gone") is None


async def test_transient_store_failures_are_retried():
    """A store that fails a few times still gets the write."""
    store = FlakyStore(failures=3)
    async with job("flaky", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)
    record = parse(await store.load("flaky") or b"", "flaky", store)

    assert (1, "completed") == (record["cursor"], record["status"])
    assert 3 + 2 == store.attempts


async def test_a_store_that_never_recovers_raises_store_error_with_the_cause(
    monkeypatch: pytest.MonkeyPatch,
):
    """After its retries, a failing save raises StoreError naming the key and store."""
    with fast_timing(save=0.2):
        store = MemoryStore()
        cause = OSError(28, "No space left on device")
        with pytest.raises(StoreError, match=r"'broken'.*MemoryStore.*No space left") as caught:
            async with job("broken", cursor=0, store=store, triggers=[]) as j:
                j.advance(1)
                monkeypatch.setattr(store, "save", _failing(cause))

        assert cause is caught.value.__cause__
        assert 0 == parse(await store.load("broken") or b"", "broken", store)["cursor"]


def _failing(error: Exception):
    async def save(*args: object, **kwargs: object) -> None:
        raise error

    return save


async def test_a_failing_final_write_does_not_hide_the_job_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """When the job raised and the last write fails too, the job's error propagates."""
    with fast_timing(save=0.1):
        store = MemoryStore()
        with pytest.raises(ZeroDivisionError):
            async with job("both", cursor=0, store=store, triggers=[]) as j:
                monkeypatch.setattr(store, "save", _failing(ConnectionError("down")))
                j.advance(1)
                1 / 0  # noqa: B018 - the job's own failure

        assert "could not write its final state" in caplog.text


async def test_migrate_persists_at_once_and_stops_pulling_items():
    """On migrate, the latest cursor is written, the generator is not advanced, the run waits."""
    store = MemoryStore()
    pulled: list[int] = []
    handle: list[object] = []

    @resumable(key="migrating", store=store, interval=None, triggers=[_Capture(handle)])
    async def crawl(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 1_000_000):
            pulled.append(i)
            await asyncio.sleep(0)
            yield i + 1

    task = asyncio.ensure_future(crawl())
    await wait_until(lambda: len(pulled) > 20)
    j = handle[0]
    await j.migrate(timeout=5)  # type: ignore[attr-defined]
    saved = parse(await store.load("migrating") or b"", "migrating", store)["cursor"]
    pulled_at_save = len(pulled)
    await asyncio.sleep(0.05)
    pulled_later = len(pulled)
    await j.abort("test over")  # type: ignore[attr-defined]
    outcome = await task

    assert pulled_at_save == pulled_later
    assert saved in (pulled_at_save, pulled_at_save - 1)
    # The item in flight when the event came may finish and yield; nothing new is pulled.
    assert ("aborted", pulled_at_save) == (outcome.status, outcome.cursor)


class _Capture:
    """A trigger that hands the test the job it attached to."""

    def __init__(self, sink: list[object]) -> None:
        self.sink = sink

    def attach(self, job: object):
        self.sink.append(job)
        return lambda: None


async def test_abort_closes_the_generator_and_ends_aborted():
    """abort() writes `aborted`, runs the generator's finally blocks, and returns an Outcome."""
    store = MemoryStore()
    handle: list[object] = []
    cleaned: list[str] = []
    pulled: list[int] = []

    @resumable(key="abort", store=store, interval=None, triggers=[_Capture(handle)])
    async def crawl(*, cursor: int = 0) -> AsyncIterator[int]:
        try:
            for i in range(cursor, 1_000_000):
                pulled.append(i)
                await asyncio.sleep(0.001)
                yield i + 1
        finally:
            cleaned.append("finally")

    task = asyncio.ensure_future(crawl())
    await wait_until(lambda: len(pulled) > 5)
    await handle[0].abort("test")  # type: ignore[attr-defined]
    outcome = await task
    record = parse(await store.load("abort") or b"", "abort", store)

    assert ["finally"] == cleaned
    assert "aborted" == outcome.status
    assert (outcome.cursor, "aborted") == (record["cursor"], record["status"])


async def test_abort_in_the_context_manager_cancels_the_body_and_returns():
    """An abort stops the `async with job()` body at its next await; the block exits quietly."""
    store = MemoryStore()
    async with job("cm-abort", cursor=0, store=store, interval=None, triggers=[]) as j:
        j.advance(3)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(j.abort("test")))
        await asyncio.Event().wait()
    record = parse(await store.load("cm-abort") or b"", "cm-abort", store)

    assert j.outcome is not None
    assert ("aborted", 3) == (j.outcome.status, j.outcome.cursor)
    assert ("aborted", 3) == (record["status"], record["cursor"])


async def test_an_outside_cancel_during_an_abort_still_propagates():
    """Our own interruption never swallows somebody else's cancellation."""
    store = MemoryStore()

    async def body() -> None:
        async with job("both-cancel", cursor=0, store=store, interval=None, triggers=[]) as j:
            j.advance(1)
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(j.abort("test")))
            asyncio.current_task().cancel()  # type: ignore[union-attr]
            await asyncio.Event().wait()

    with pytest.raises(asyncio.CancelledError):
        await body()


async def test_a_corrupt_record_raises_and_is_left_byte_for_byte(tmp_path: Path):
    """CorruptStateError says where the record is and how to reset it; the file is untouched."""
    store = FileStore(tmp_path)
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"resumable": 1, "cursor": 3')
    before = path.read_bytes()

    with pytest.raises(CorruptStateError, match=r"'broken'.*FileStore.*reset broken"):
        async with job("broken", cursor=0, store=store, triggers=[]):
            pass

    assert before == path.read_bytes()


async def test_a_record_of_something_else_is_not_ours(tmp_path: Path):
    """JSON without our marker is refused, not overwritten."""
    store = FileStore(tmp_path)
    (tmp_path / "INPUT.json").write_text('{"startUrls": []}')

    with pytest.raises(CorruptStateError, match="not a resumable record"):
        async with job("INPUT", cursor=0, store=store, triggers=[]):
            pass

    assert '{"startUrls": []}' == (tmp_path / "INPUT.json").read_text()


async def test_a_job_is_entered_once():
    """Re-entering a finished Job is refused: each run gets its own."""
    j = job("once", cursor=0, store=MemoryStore(), triggers=[])
    async with j:
        pass

    with pytest.raises(RuntimeError, match="already started"):
        async with j:
            pass


@pytest.mark.parametrize(
    ("option", "value"),
    [("every", 0), ("interval", -1.0), ("on_corrupt", "ignore"), ("version", 0)],
)
def test_bad_options_are_refused(option: str, value: object):
    """Option values that make no sense fail at once with the option's name."""
    with pytest.raises(ValueError, match=option):
        job("k", cursor=0, **{option: value})  # type: ignore[arg-type]


async def test_a_stale_save_propagating_from_the_body_writes_nothing_more(
    caplog: pytest.LogCaptureFixture,
):
    """Leaving the block with StaleWriterError does not try a last write over the new owner."""
    store = MemoryStore()
    with pytest.raises(StaleWriterError):
        async with job("handed-over", cursor=0, store=store, triggers=[]) as old:
            async with job("handed-over", cursor=0, store=store, triggers=[]) as new:
                new.advance(5)
            old.advance(1)
            await old.save()

    assert "could not write its final state" not in caplog.text
    assert 5 == parse(await store.load("handed-over") or b"", "handed-over", store)["cursor"]


async def test_with_options_replaces_options_and_keeps_the_original():
    """fn.with_options(store=...) is the same job elsewhere; unknown options are refused."""
    first, second = MemoryStore(), MemoryStore()

    @resumable(key="opts", store=first, triggers=[])
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        yield cursor + 1

    await numbers.with_options(store=second, key="elsewhere")()

    assert [] == await first.keys()
    assert ["elsewhere"] == await second.keys()
    assert first is numbers.options["store"]
    with pytest.raises(InvalidOptionError, match="unknown options \\['stor'\\]"):
        numbers.with_options(stor=second)


async def test_a_parked_run_still_hears_its_triggers():
    """After a migration the run waits with its triggers attached, so an abort still ends it."""
    store = MemoryStore()
    handle: list[object] = []
    detached: list[bool] = []

    class Watch(_Capture):
        def attach(self, job: object):
            super().attach(job)
            return lambda: detached.append(True)

    @resumable(key="parked", store=store, interval=None, triggers=[Watch(handle)])
    async def crawl(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 1_000_000):
            await asyncio.sleep(0)
            yield i + 1

    task = asyncio.ensure_future(crawl())
    await wait_until(lambda: bool(handle))
    await handle[0].migrate(timeout=5)  # type: ignore[attr-defined]
    await wait_until(lambda: handle[0]._phase is Phase.PARKED)  # type: ignore[attr-defined]
    attached_while_parked = not detached
    await handle[0].abort("the platform gave up waiting")  # type: ignore[attr-defined]
    outcome = await task

    assert attached_while_parked
    assert [True] == detached
    assert "aborted" == outcome.status
