"""How a run ends: nothing writes after the end, a watched run closes, a finished Job refuses."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from helpers import CountingStore, Grab, record_of, wait_until

from resumable import FinishedJobError, MemoryStore, job, resumable
from resumable._phase import End


async def test_migrating_while_the_last_save_is_held_is_ignored():
    """The run is closing: a migration then neither writes `running` nor waits."""
    store = CountingStore()
    grab = Grab()
    j = job("late", 0, store=store, triggers=[grab], interval=None)
    await j.__aenter__()
    j.advance(10)
    store.gate = asyncio.Event()
    exiting = asyncio.ensure_future(j.__aexit__(None, None, None))
    await wait_until(lambda: store.in_flight == 1)
    controls = await grab.job()
    await controls.migrate(timeout=5)
    store.gate.set()
    await exiting
    await controls.migrate(timeout=5)

    assert ("completed", 10) == (
        record_of(store, "late")["status"],
        record_of(store, "late")["cursor"],
    )
    assert 2 == len(store.writes)


async def test_a_finished_job_refuses_to_be_used():
    """save() and advance() after the block raise, naming the key; nothing is written."""
    store = MemoryStore()
    async with job("done", 0, store=store, triggers=[]) as j:
        j.advance(3)
    before = record_of(store, "done")

    with pytest.raises(FinishedJobError, match="'done'"):
        await j.save()
    with pytest.raises(FinishedJobError, match="'done'"):
        j.advance(9)
    with pytest.raises(FinishedJobError, match="already started"):
        async with j:
            pass
    assert before == record_of(store, "done")


async def test_aclose_ends_a_watched_run_at_the_latest_handed_over_cursor():
    """Leaving `async for` early and calling aclose() persists what was handed over, aborted."""
    store = MemoryStore()

    @resumable(key="watched", store=store, interval=None, triggers=[])
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 100):
            await asyncio.sleep(0)
            yield i + 1

    run = numbers()
    async for cursor in run:
        if cursor == 7:
            break
    await run.aclose()

    assert run.outcome is not None
    assert ("aborted", 7) == (run.outcome.status, run.outcome.cursor)
    assert ("aborted", 7) == (
        record_of(store, "watched")["status"],
        record_of(store, "watched")["cursor"],
    )


async def test_a_watched_run_left_by_break_is_closed_when_collected():
    """Without aclose(), garbage collection closes the run the same way, raising nothing."""
    store = MemoryStore()

    @resumable(key="dropped", store=store, interval=None, triggers=[])
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 100):
            await asyncio.sleep(0)
            yield i + 1

    async def watch() -> None:
        async for cursor in numbers():
            if cursor == 4:
                break

    await watch()
    gc.collect()
    await wait_until(lambda: record_of(store, "dropped")["status"] == "aborted")

    assert 4 == record_of(store, "dropped")["cursor"]


async def test_the_watcher_is_never_cut_while_it_handles_a_cursor():
    """An abort while the watcher holds a cursor ends the run at that cursor, uncut."""
    store = MemoryStore()
    grab = Grab()

    @resumable(key="handled", store=store, interval=None, triggers=[grab], grace=0)
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 100):
            yield i + 1

    handled: list[int] = []
    async for cursor in numbers():
        if cursor == 3:
            await grab.controls[0].abort("test")
            await asyncio.sleep(0.01)  # the watcher's own work, after the abort
        handled.append(cursor)

    assert [1, 2, 3] == handled
    assert ("aborted", 3) == (
        record_of(store, "handled")["status"],
        record_of(store, "handled")["cursor"],
    )


async def test_a_none_default_with_a_plain_cursor_type_is_storable():
    """job(key, cursor=None, cursor_type=datetime) starts, advances, and resumes."""
    store = MemoryStore()
    when = datetime(2026, 1, 2, tzinfo=UTC)
    async with job("since", cursor=None, cursor_type=datetime, store=store, triggers=[]) as j:
        assert j.cursor is None
        j.advance(when)
    async with job("since", cursor=None, cursor_type=datetime, store=store, triggers=[]) as j:
        resumed = j.cursor

    assert when == resumed


async def test_a_decorated_job_with_a_none_default_and_a_plain_annotation_works():
    """`cursor: datetime = None` is read as `datetime | None`."""
    store = MemoryStore()
    when = datetime(2026, 1, 2, tzinfo=UTC)

    @resumable(key="since-dec", store=store, triggers=[])
    async def since(*, cursor: datetime = None) -> AsyncIterator[datetime]:  # type: ignore[assignment]  # noqa: RUF013
        yield when

    outcome = await since()

    assert when == outcome.cursor


def test_each_end_means_one_thing() -> None:
    """No end is an alias of another; each says what its last save writes. (And the error
    of a finished job is one of the package's errors, importable from it.)"""
    expected = {
        "COMPLETED": "completed",
        "MIGRATED": "running",
        "ABORTED": "aborted",
        "CANCELLED": "aborted",
        "FAILED": "failed",
        "FENCED": None,
    }

    assert expected == {end.name: end.status for end in End}
    assert "resumable._errors" == FinishedJobError.__module__
    assert len(End.__members__) == len({end.value for end in End})
