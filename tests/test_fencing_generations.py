"""Fencing by claim generation: an older run never wins over a newer one, even on stores that
cannot check and write in one step."""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import record_of, wait_until

from resumable import MemoryStore, StaleWriterError, job
from resumable._stores import Guard


class ReadThenWrite(MemoryStore):
    """A store whose ownership check and write are two steps, with a window between them that
    a test can hold open (as Crawlee's key-value stores on SQL and Redis have)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def load(self, key: str) -> bytes | None:
        await asyncio.sleep(0)  # a round trip: other runs write meanwhile
        return await super().load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        if guard is not None:
            guard(self._records.get(key))
        if self.hold:
            self.hold = False
            self.held.set()
            await self.release.wait()
        self._records[key] = bytes(data)


async def test_a_delayed_write_of_an_older_run_is_undone_by_the_newer_run(
    caplog: pytest.LogCaptureFixture,
):
    """The older run's write lands after the newer run took over; the newer run writes its
    own state back at its next save, and the older run is fenced out at its next write."""
    store = ReadThenWrite()
    older = job("key", 0, store=store, triggers=[], interval=None)
    newer = job("key", 0, store=store, triggers=[], interval=None)
    await older.__aenter__()
    older.advance(10)
    store.hold = True
    delayed = asyncio.ensure_future(older.save())
    await store.held.wait()  # the older run checked ownership; its write is on the way
    await newer.__aenter__()
    newer.advance(20)
    store.release.set()
    await delayed  # it lands over the newer run's claim
    landed = record_of(store, "key")
    with caplog.at_level(logging.WARNING, logger="resumable"):
        await newer.save()
    restored = record_of(store, "key")
    older.advance(11)
    with pytest.raises(StaleWriterError) as fenced:
        await older.save()
    await older.__aexit__(StaleWriterError, fenced.value, None)
    await newer.__aexit__(None, None, None)
    final = record_of(store, "key")

    assert (10, 1) == (landed["cursor"], landed["generation"])
    assert (20, 2) == (restored["cursor"], restored["generation"])
    assert "writes its own state back" in caplog.text
    assert (20, 2, "completed") == (final["cursor"], final["generation"], final["status"])


async def test_a_new_run_takes_over_a_key_an_older_run_keeps_writing():
    """The claim retries with backoff until it lands between the older run's writes; it
    never writes back a cursor older than the one it took over, and the older run ends
    fenced out."""
    for trial in range(20):
        store = ReadThenWrite()
        started = asyncio.Event()

        async def older(store: ReadThenWrite = store, started: asyncio.Event = started) -> None:
            async with job("busy", 0, store=store, triggers=[], interval=None, every=1) as j:
                for i in range(1, 10_000_000):
                    j.advance(i)
                    started.set()
                    await asyncio.sleep(0)

        writer = asyncio.ensure_future(older())
        await started.wait()
        await asyncio.sleep(0.002)
        newer = job("busy", 0, store=store, triggers=[], interval=None)
        async with newer:
            took_over = record_of(store, "busy")
            with pytest.raises(StaleWriterError):
                await writer

        assert newer.resumed, f"trial {trial}"
        assert newer.resumed_from == took_over["cursor"]
        assert took_over["cursor"] >= 1
        assert "completed" == record_of(store, "busy")["status"]


async def test_a_taken_over_run_with_nothing_to_write_finds_out_at_its_next_tick():
    """An idle run learns it was taken over at its next periodic tick, not only at its next
    changed-cursor save, and stops with StaleWriterError without writing."""
    store = MemoryStore()
    older = job("idle", 0, store=store, triggers=[], interval=0.01)

    async def idle() -> None:
        async with older:
            older.advance(5)
            await older.save()
            await asyncio.Event().wait()  # nothing new to write, ever

    task = asyncio.ensure_future(idle())
    await wait_until(lambda: "idle" in store._records and record_of(store, "idle")["cursor"] == 5)
    async with job("idle", 0, store=store, triggers=[], interval=None) as newer:
        newer.advance(6)
        await newer.save()
        with pytest.raises(StaleWriterError):
            await asyncio.wait_for(task, timeout=10)
        seen = record_of(store, "idle")

    assert (6, newer._writer.owner) == (seen["cursor"], seen["owner"])
