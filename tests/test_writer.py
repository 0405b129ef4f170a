"""The writer: urgent saves never wait behind routine ones, and its failures fail the run."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from helpers import Grab, HangingStore, record_of, wait_until

from resumable import CursorTypeError, MemoryStore, StoreError, job, resumable
from resumable._stores import Guard


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
    assert 3 == len(store.seqs)


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
