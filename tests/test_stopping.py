"""How a run stops: grace for the work in flight, the cut after it, and what the cut persists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from helpers import Grab, record_of, wait_until

from resumable import MemoryStore, job, resumable


async def test_work_that_swallows_the_cut_and_yields_is_not_persisted():
    """A cursor yielded after the engine cut the work (which swallowed it) is never saved."""
    store = MemoryStore()
    grab = Grab()
    done: list[int] = []
    in_page = asyncio.Event()

    @resumable(key="swallow", store=store, interval=None, triggers=[grab], grace=0)
    async def pages(*, cursor: int = 0) -> AsyncIterator[int]:
        for page in range(cursor, 10):
            try:
                if page == 3:
                    in_page.set()
                    await asyncio.Event().wait()  # the work on page 3, which the cut ends
                done.append(page)
            except asyncio.CancelledError:
                pass  # a dependency that swallows cancellation (as crawlers do)
            yield page + 1

    run = asyncio.ensure_future(pages())
    controls = await grab.job()
    await in_page.wait()
    await controls.abort("test")
    outcome = await run

    assert [0, 1, 2] == done
    assert ("aborted", 3) == (outcome.status, outcome.cursor)
    assert (3, "aborted") == (record_of(store, "swallow")["cursor"], "aborted")


async def test_the_work_in_flight_finishes_within_its_grace():
    """After an abort, the page in flight reaches its next yield; nothing is cancelled."""
    store = MemoryStore()
    grab = Grab()
    release = asyncio.Event()
    cancelled: list[bool] = []
    finished: list[int] = []

    @resumable(key="graceful", store=store, interval=None, triggers=[grab], grace=30)
    async def pages(*, cursor: int = 0) -> AsyncIterator[int]:
        try:
            for page in range(cursor, 10):
                if page == 2:
                    await release.wait()
                finished.append(page)
                yield page + 1
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    run = asyncio.ensure_future(pages())
    controls = await grab.job()
    await wait_until(lambda: finished == [0, 1])
    abort = asyncio.ensure_future(controls.abort("test"))
    await wait_until(lambda: record_of(store, "graceful")["status"] == "aborted")
    release.set()
    outcome = await run
    await abort

    assert [] == cancelled
    assert [0, 1, 2] == finished
    assert ("aborted", 3) == (outcome.status, outcome.cursor)
    assert 3 == record_of(store, "graceful")["cursor"]


async def test_the_job_form_body_sees_stopping_and_leaves_by_itself():
    """In `async with job(...)`, the body gets its grace to notice j.stopping; it is not cut."""
    store = MemoryStore()
    grab = Grab()
    seen: list[str] = []

    async def body() -> None:
        async with job("form", 0, store=store, interval=None, triggers=[grab], grace=30) as j:
            for i in range(j.cursor, 1_000_000):
                if j.stopping:
                    seen.append("stopping")
                    break
                await asyncio.sleep(0.001)
                j.advance(i + 1)

    task = asyncio.ensure_future(body())
    controls = await grab.job()
    await wait_until(lambda: controls.yields > 5)
    await controls.abort("test")
    await task

    assert ["stopping"] == seen
    assert "aborted" == record_of(store, "form")["status"]
    assert controls.yields == record_of(store, "form")["cursor"]


async def test_a_body_that_ignores_stopping_is_cut_after_its_grace():
    """The job form's body is cancelled once its grace is over; the run still ends aborted."""
    store = MemoryStore()
    grab = Grab()
    j = job("stubborn", 0, store=store, interval=None, triggers=[grab], grace=0.05)

    async def body() -> None:
        async with j:
            j.advance(7)
            await asyncio.Event().wait()

    task = asyncio.ensure_future(body())
    controls = await grab.job()
    await wait_until(lambda: controls.yields == 1)
    await controls.abort("test")
    await task

    assert j.outcome is not None
    assert ("aborted", 7) == (j.outcome.status, j.outcome.cursor)


async def test_a_second_abort_cuts_the_work_at_once():
    """A second stop (a second signal) does not wait for the grace."""
    store = MemoryStore()
    grab = Grab()
    in_page = asyncio.Event()

    @resumable(key="twice", store=store, interval=None, triggers=[grab], grace=3600)
    async def pages(*, cursor: int = 0) -> AsyncIterator[int]:
        yield 1
        in_page.set()
        await asyncio.Event().wait()
        yield 2

    run = asyncio.ensure_future(pages())
    controls = await grab.job()
    await in_page.wait()
    first = asyncio.ensure_future(controls.abort("first"))
    await wait_until(lambda: record_of(store, "twice")["status"] == "aborted")
    await controls.abort("second")
    outcome = await run
    await first

    assert ("aborted", 1) == (outcome.status, outcome.cursor)


async def test_an_outside_cancellation_saves_then_propagates():
    """Cancelling the task that awaits a run persists the last cursor, then cancels."""
    store = MemoryStore()
    grab = Grab()

    @resumable(key="cancelled", store=store, interval=None, triggers=[grab])
    async def pages(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 1_000_000):
            await asyncio.sleep(0.001)
            yield i + 1

    task = asyncio.ensure_future(pages())
    controls = await grab.job()
    await wait_until(lambda: controls.refresh() or controls.yields > 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert "aborted" == record_of(store, "cancelled")["status"]
    assert record_of(store, "cancelled")["cursor"] >= 3
