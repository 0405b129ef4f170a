"""`Job.commit`, `Job.on_stop` and `Job.stop`: what work that acts on persisted cursors needs."""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers import CountingStore, Grab

from resumable import FinishedJobError, MemoryStore, StaleWriterError, job


async def test_commit_writes_the_cursor_at_once_and_says_it_landed() -> None:
    """`commit` writes the cursor now (no timer, no every=), and returns True once the
    store holds it."""
    store = CountingStore()
    async with job("j", cursor=0, store=store, triggers=[], interval=None) as j:
        landed = await j.commit(5)
        held = json.loads(store.writes[-1])["cursor"]

    assert (True, 5) == (landed, held)


async def test_commit_of_a_mutable_cursor_persists_it_as_it_was() -> None:
    """A dict committed and changed afterwards is persisted as it was at the commit."""
    store = MemoryStore()
    async with job("j", cursor={}, store=store, triggers=[], interval=None) as j:
        cursor = {"n": 1}
        assert await j.commit(cursor)
        cursor["n"] = 2
        persisted = j.persisted

    assert {"n": 1} == persisted


async def test_commit_after_the_work_was_cut_says_it_did_not_land() -> None:
    """Once an abort past its grace has cut the work, a commit returns False and the record
    keeps the cursor of the cut: work acting on it would act on something never persisted."""
    grab, store = Grab(), MemoryStore()
    results: list[bool] = []

    async def body() -> None:
        async with job("j", cursor=0, store=store, triggers=[grab], grace=0.0) as j:
            assert await j.commit(1)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                results.append(await j.commit(2))
                raise

    task = asyncio.create_task(body())
    await (await grab.job()).abort("test")
    await task
    record = json.loads(await store.load("j") or b"{}")

    assert ([False], 1, "aborted") == (results, record["cursor"], record["status"])


async def test_commit_by_a_run_taken_over_raises() -> None:
    """A commit of a run whose key another run has claimed raises StaleWriterError."""
    store = MemoryStore()
    older = job("j", cursor=0, store=store, triggers=[], interval=None)
    newer = job("j", cursor=0, store=store, triggers=[], interval=None)
    with pytest.raises(StaleWriterError):
        async with older, newer:
            await older.commit(1)


async def test_commit_outside_the_run_is_refused() -> None:
    """Committing before the run started or after it ended is an error, as `save` is."""
    j = job("j", cursor=0, store=MemoryStore(), triggers=[])
    with pytest.raises(FinishedJobError):
        await j.commit(1)


async def test_on_stop_is_told_once_when_the_run_stops_taking_work() -> None:
    """A callback given to `on_stop` runs once, synchronously, when a stop comes; one given
    after the stop runs at once; a removed one never runs."""
    told: list[str] = []
    async with job("j", cursor=0, store=MemoryStore(), triggers=[]) as j:
        j.on_stop(lambda: told.append("first"))
        remove = j.on_stop(lambda: told.append("removed"))
        remove()
        j.stop("a test stops it")
        j.stop("a test stops it again")
        j.on_stop(lambda: told.append("late"))

    assert ["first", "late"] == told


async def test_stop_ends_the_run_aborted_without_a_grace() -> None:
    """A body that finds out by itself that it was interrupted calls `stop`: the run takes no
    more work and ends aborted at once, its latest cursor saved."""
    store = MemoryStore()
    async with job("j", cursor=0, store=store, triggers=[], grace=60) as j:
        j.advance(3)
        j.stop("the library under it handled Ctrl-C")
        stopping = j.stopping

    record = json.loads(await store.load("j") or b"{}")

    assert j.outcome is not None
    assert (True, "aborted") == (stopping, j.outcome.status)
    assert (3, "aborted") == (record["cursor"], record["status"])
