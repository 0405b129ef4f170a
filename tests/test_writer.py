"""The writer: urgent saves never wait behind routine saves or deliveries; failures fail the run."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from helpers import AppendOnly, Grab, HangingStore, record_of, wait_until

from resumable import CursorTypeError, MemoryStore, Outbox, Outcome, StoreError, job, resumable
from resumable._stores import Guard
from resumable.testing import FailingSink, MemorySink, fast_timing


async def _numbers(grab: Grab, store: MemoryStore, key: str) -> asyncio.Future[object]:
    @resumable(key=key, store=store, interval=0.01, triggers=[grab], grace=0)
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 10_000_000):
            await asyncio.sleep(0.001)
            yield i + 1

    return asyncio.ensure_future(numbers())


async def test_an_abort_does_not_wait_behind_a_hung_routine_save():
    """A periodic save hangs for ever; the abort's save abandons it and lands at once."""
    store = HangingStore(hang_at=2)  # the claim, then the first periodic save hangs
    grab = Grab()
    run = await _numbers(grab, store, "hung")
    controls = await grab.job()
    await store.hanging.wait()
    await wait_until(lambda: controls.refresh() or controls.yields > 5)
    await controls.abort("test", budget=30)
    outcome = await run

    assert "aborted" == outcome.status
    assert ("aborted", outcome.cursor) == (
        record_of(store, "hung")["status"],
        record_of(store, "hung")["cursor"],
    )
    assert outcome.cursor >= 5


class LandsThenHangs(MemoryStore):
    """A MemoryStore whose save number *hang_at* lands, then never returns (a lost reply)."""

    def __init__(self, hang_at: int) -> None:
        super().__init__()
        self.hang_at = hang_at
        self.seqs: list[int] = []
        self.hanging = asyncio.Event()

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        await super().save(key, data, guard=guard)
        self.seqs.append(json.loads(data)["seq"])
        if len(self.seqs) == self.hang_at:
            self.hanging.set()
            await asyncio.Event().wait()


async def test_a_routine_save_cut_off_after_it_landed_does_not_have_its_seq_reused():
    """A periodic save lands but never returns; the abort's save, which abandons it, takes
    a later seq: no two records of the key ever share a seq."""
    store = LandsThenHangs(hang_at=2)  # the claim, then the first periodic save
    grab = Grab()
    run = await _numbers(grab, store, "landed")
    controls = await grab.job()
    await store.hanging.wait()
    await controls.abort("test", budget=30)
    outcome = await run

    assert "aborted" == outcome.status
    assert sorted(set(store.seqs)) == store.seqs
    # The claim, the save that landed and hung, the abort's: a cursor the work reached within
    # the grace (on a busy machine) is written after them, with the next seq again.
    assert [1, 2, 3] == store.seqs[:3]


async def test_a_migration_does_not_wait_behind_a_hung_routine_save():
    """migrating saves within its budget although a periodic save hangs."""
    store = HangingStore(hang_at=2)
    grab = Grab()
    run = await _numbers(grab, store, "hung-migrating")
    controls = await grab.job()
    await store.hanging.wait()
    await wait_until(lambda: controls.refresh() or controls.yields > 5)
    await asyncio.wait_for(controls.migrate(timeout=30), timeout=5)
    saved = record_of(store, "hung-migrating")
    await controls.abort("the platform stops the process")
    await run

    assert "running" == saved["status"]
    assert saved["cursor"] >= 5


async def test_a_cursor_the_codec_cannot_store_fails_the_run_loudly():
    """A later cursor that cannot be encoded (a lone surrogate) fails the run, not the writer
    silently; the record keeps the last good cursor, marked failed."""
    store = MemoryStore()

    @resumable(key="files", store=store, every=1, interval=None, triggers=[])
    async def files(*, cursor: str = "") -> AsyncIterator[str]:
        yield "a.txt"
        await asyncio.sleep(0.01)
        yield "b-\udcff.txt"  # what os.fsdecode gives for a name that is not UTF-8
        await asyncio.sleep(3600)
        yield "c.txt"

    with pytest.raises(CursorTypeError, match="surrogate"):
        await asyncio.wait_for(files(), timeout=10)

    assert ("a.txt", "failed") == (
        record_of(store, "files")["cursor"],
        record_of(store, "files")["status"],
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
async def test_a_last_cursor_json_cannot_hold_is_refused_not_rewritten(bad: float):
    """NaN and infinity are refused wherever they come, never written as non-standard JSON."""
    store = MemoryStore()
    with pytest.raises(CursorTypeError, match="JSON"):
        async with job("floats", 0.0, store=store, triggers=[], interval=None) as j:
            j.advance(0.5)
            j.advance(bad)
    raw = store._records["floats"]

    assert b"NaN" not in raw
    assert b"Infinity" not in raw
    assert ("failed", 0.0) == (json.loads(raw)["status"], json.loads(raw)["cursor"])


async def test_at_most_one_write_is_in_flight_under_urgent_and_routine_saves():
    """Routine, urgent and final saves never overlap in the store."""
    in_flight = [0, 0]

    class Probe(MemoryStore):
        async def save(self, key: str, data: bytes, *, guard: object = None) -> None:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            try:
                await asyncio.sleep(0.002)
                await super().save(key, data, guard=guard)  # type: ignore[arg-type]
            finally:
                in_flight[0] -= 1

    store = Probe()
    async with job("one", 0, store=store, every=1, interval=0.001, triggers=[]) as j:
        for i in range(200):
            j.advance(i + 1)
            if i % 17 == 0:
                await j.save()
            await asyncio.sleep(0)

    assert 1 == in_flight[1]
    assert 200 == record_of(store, "one")["cursor"]


async def test_a_save_that_runs_out_of_time_says_so():
    """A store call cut off at the deadline is reported in words, not as an empty error."""
    store = HangingStore(hang_at=2)
    async with job("slow", 0, store=store, triggers=[], interval=None) as j:
        j.advance(1)
        with pytest.raises(StoreError) as caught:
            await j.save(timeout=0.05)
        message = str(caught.value)
        store.hang_at = 0

    assert "'slow'" in message
    assert "did not answer before the deadline" in message
    assert ": ." not in message


async def test_an_urgent_save_that_will_not_land_says_so_before_its_deadline(
    caplog: pytest.LogCaptureFixture,
):
    """A stop's save that is still hanging at 80 % of its budget is logged loudly before the
    budget runs out, then reported as failed."""
    store = HangingStore(hang_at=2)
    grab = Grab()
    run = await _numbers(grab, store, "late")
    controls = await grab.job()
    with caplog.at_level(logging.WARNING, logger="resumable"):
        await controls.abort("test", budget=0.3)
        store.hang_at = 0
        await run
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    warned = next(i for i, (_, m) in enumerate(messages) if "has not landed after" in m)
    failed = next(i for i, (_, m) in enumerate(messages) if "could not save on abort" in m)

    assert warned < failed
    assert "WARNING" == messages[warned][0]


class StuckSink(MemorySink):
    """A MemorySink whose appends wait at a gate while it is shut, as over a dead connection.

    ``in_flight`` counts the appends waiting there; one cut off (cancelled) leaves it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0

    async def append(self, items: Sequence[Any], start: int) -> None:
        if not self.gate.is_set():
            self.in_flight += 1
            try:
                await self.gate.wait()
            finally:
                self.in_flight -= 1
        await super().append(items, start)


class SeesTheSink(MemoryStore):
    """A MemoryStore that notes, at each write, its status and whether a delivery hangs."""

    def __init__(self, sink: StuckSink) -> None:
        super().__init__()
        self.sink = sink
        self.writes: list[tuple[str, bool]] = []

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        await super().save(key, data, guard=guard)
        self.writes.append((json.loads(data)["status"], self.sink.in_flight > 0))


async def _pushing(
    grab: Grab, store: MemoryStore, sink: StuckSink, key: str
) -> asyncio.Future[Outcome[int]]:
    @resumable(key=key, store=store, sink=sink, interval=0.01, triggers=[grab], grace=1)
    async def numbers(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 10_000_000):
            await asyncio.sleep(0.001)
            out.push(i)
            yield i + 1

    return asyncio.ensure_future(numbers())


async def test_an_abort_does_not_wait_behind_a_hung_delivery():
    """A routine save's delivery hangs; the abort's record (cursor and pending outputs) is
    written while it still hangs, and once the sink answers every output lands once."""
    sink = StuckSink()
    store, grab = SeesTheSink(sink), Grab()
    run = await _pushing(grab, store, sink, "hung-sink")
    controls = await grab.job()
    sink.gate.clear()
    await wait_until(lambda: sink.in_flight > 0)
    stuck_at = record_of(store, "hung-sink")["cursor"]
    await wait_until(lambda: controls.refresh() or controls.yields > stuck_at + 5)
    await controls.abort("test", budget=30)
    aborted = record_of(store, "hung-sink")
    sink.gate.set()
    outcome = await run

    assert ("aborted", True) == next(w for w in store.writes if w[0] == "aborted")
    assert aborted["cursor"] > stuck_at
    assert [aborted["outbox"]["delivered"]] == aborted["outbox"]["pending"][:1]
    assert list(range(outcome.cursor)) == sink.items


async def test_a_migration_does_not_wait_behind_a_hung_delivery():
    """migrating writes its record while a delivery hangs; the delivery goes on after it."""
    sink = StuckSink()
    store, grab = SeesTheSink(sink), Grab()
    run = await _pushing(grab, store, sink, "hung-sink-migrating")
    controls = await grab.job()
    sink.gate.clear()
    await wait_until(lambda: sink.in_flight > 0)
    stuck_at = record_of(store, "hung-sink-migrating")["cursor"]
    await wait_until(lambda: controls.refresh() or controls.yields > stuck_at + 5)
    await controls.migrate(timeout=30)
    migrated = list(store.writes)
    saved = record_of(store, "hung-sink-migrating")
    sink.gate.set()
    await wait_until(lambda: not record_of(store, "hung-sink-migrating")["outbox"]["pending"])
    await controls.abort("the platform stops the process")
    outcome = await run

    assert ("running", True) == migrated[-1]
    assert saved["cursor"] > stuck_at
    assert list(range(outcome.cursor)) == sink.items


async def test_a_delivery_cut_off_by_a_stop_is_read_back_by_the_next_run():
    """A delivery lands and then hangs (its reply lost); the abort saves within its budget,
    the run ends with the delivery cut off, and the next run reads the sink back instead of
    appending the batch again."""
    sink = FailingSink(AppendOnly(), lands=True, delay=3600)
    store, grab = MemoryStore(), Grab()

    @resumable(key="cut-delivery", store=store, sink=sink, interval=0.01, triggers=[grab])
    async def numbers(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 300):
            await asyncio.sleep(0.001)
            out.push(i)
            yield i + 1

    run = asyncio.ensure_future(numbers())
    controls = await grab.job()
    sink.fail_next(1)
    await wait_until(lambda: sink.failures == 1)
    await controls.abort("test", budget=1)
    first = await run
    held = list(sink.inner.items)  # type: ignore[attr-defined]
    second = await numbers.with_options(triggers=[])()

    assert "aborted" == first.status
    assert held
    assert list(range(300)) == sink.inner.items  # type: ignore[attr-defined]
    assert 300 == second.cursor


class Sizes(MemoryStore):
    """A MemoryStore that keeps the size of the largest record written."""

    largest = 0

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.largest = max(self.largest, len(data))
        await super().save(key, data, guard=guard)


async def test_a_sink_that_stays_down_holds_the_job_back_instead_of_overfilling_records():
    """While the sink is down, what the records hold undelivered counts toward the outbox's
    bound: the job waits at its cursors instead of piling outputs into records until one is
    over max_size, and once the sink is back every output lands once."""
    with fast_timing(save=0.05):
        sink, store = FailingSink(forever=True), Sizes()

        @resumable(key="down", store=store, sink=sink, triggers=[], interval=None, max_size=64_000)
        async def export(*, cursor: int = 0, out: Outbox[dict[str, Any]]) -> AsyncIterator[int]:
            for i in range(cursor, 5_000):
                out.push({"n": i, "pad": "x" * 40})
                yield i + 1

        run = asyncio.ensure_future(export())
        await wait_until(lambda: sink.failures >= 20 or run.done(), timeout=30)
        sink.forever = False
        outcome = await run

        assert store.largest <= 64_000
        assert list(range(5_000)) == [item["n"] for item in sink.inner.items]  # type: ignore[attr-defined]
        assert 5_000 == outcome.outputs


async def test_a_stop_while_the_job_waits_for_a_save_pulls_no_more_work():
    """The job waits at a full outbox behind a hung delivery when `migrating` comes: once the
    wait ends it leaves, without starting another item the platform would throw away."""
    with fast_timing(save=0.5):
        sink, grab, started = StuckSink(), Grab(), []

        @resumable(key="held", store=MemoryStore(), sink=sink, triggers=[grab], interval=None)
        async def export(*, cursor: int = 0, out: Outbox[dict[str, Any]]) -> AsyncIterator[int]:
            for i in range(cursor, 10_000_000):
                started.append(i)
                out.push({"n": i})
                yield i + 1

        sink.gate.clear()
        run = asyncio.ensure_future(export())
        controls: Any = await grab.job()
        # The outbox is full only where the job waits for a save: it has pushed all it can.
        await wait_until(lambda: sink.in_flight > 0 and controls._outbox.full)
        await controls.migrate(timeout=30)
        before = len(started)
        await controls.abort("the platform stops the process")
        sink.gate.set()
        outcome = await run

        assert before == len(started)
        assert list(range(outcome.cursor)) == [item["n"] for item in sink.items]
