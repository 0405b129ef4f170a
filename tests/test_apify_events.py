"""`ApifyEvents`, `actor_defaults` and the `PlatformEvents` stand-in, in this process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crawlee.events import (
    Event,
    EventAbortingData,
    EventManager,
    EventMigratingData,
    EventPersistStateData,
)
from helpers import HangingStore
from websockets.asyncio.client import connect

from resumable import Job, MemoryStore, StoreError, job, resumable
from resumable.apify import ApifyEvents, actor_defaults, actor_is_running
from resumable.testing import PlatformEvents


class RecordingJob:
    """The `Controls` a trigger is given, recording which of them it used."""

    key = "recorded"
    stopping = False
    yields = 0
    saves = 0
    persisted = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def refresh(self) -> None:
        self.calls.append(("refresh", None))

    def request_save(self) -> None:
        self.calls.append(("request_save", None))

    def pause(self, budget: float | None = None) -> None:
        self.calls.append(("pause", budget))

    async def migrate(self, timeout: float | None = None) -> None:
        self.calls.append(("migrate", timeout))

    async def abort(self, reason: str = "aborted", *, budget: float | None = None) -> None:
        self.calls.append(("abort", reason))


async def emitted(events: EventManager, event: Event, data: Any) -> None:
    events.emit(event=event, event_data=data)
    await events.wait_for_all_listeners_to_complete()


async def test_each_platform_event_drives_its_job_control() -> None:
    """migrating -> migrate within the budget, persistState -> request_save (not the copy
    that accompanies a migration), aborting -> abort."""
    recording = RecordingJob()
    async with EventManager() as events:
        detach = ApifyEvents(event_manager=events).attach(recording)
        # The manager emits one persistState as it starts: let it arrive, then start clean.
        deadline = time.monotonic() + 5
        while not recording.calls:
            assert time.monotonic() < deadline, "the manager's first persistState never came"
            await asyncio.sleep(0.005)
        recording.calls.clear()
        migrating = EventMigratingData.model_validate({"timeRemainingSecs": 20})
        await emitted(events, Event.MIGRATING, migrating)
        await emitted(events, Event.PERSIST_STATE, EventPersistStateData(is_migrating=True))
        await emitted(events, Event.PERSIST_STATE, EventPersistStateData(is_migrating=False))
        await emitted(events, Event.ABORTING, EventAbortingData())
        detach()

    # The pause comes from emit() itself, before any listener task has run.
    assert ["pause", "migrate", "request_save", "abort"] == [name for name, _ in recording.calls]
    assert 18.0 == recording.calls[1][1]
    assert "aborting" in str(recording.calls[3][1])


@pytest.mark.parametrize(
    ("remaining", "budget"),
    [(None, 4.0), (20, 18.0), (60, 58.0), (3, 1.5), (0, 0.5)],
)
def test_the_migration_budget_keeps_a_safety_margin(remaining: int | None, budget: float) -> None:
    """The save may take the time left minus 2 s (at least half of it), 4 s when unknown."""
    left = None if remaining is None else timedelta(seconds=remaining)

    assert budget == ApifyEvents().budget(left)


async def test_work_that_stops_before_the_migration_listener_saves_within_its_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hook pauses a job with the migration's budget as `migrating` is emitted: when the
    work stops before the listener runs, the run's last save is bounded by that budget (here
    1.5 s of 3 s left), not by the usual ten seconds, and the log tells the story."""
    store = HangingStore(hang_at=2)  # the claim lands; the last save hangs
    async with EventManager() as events:
        j = job(
            "k", cursor=0, store=store, interval=None, triggers=[ApifyEvents(event_manager=events)]
        )
        await j.__aenter__()
        j.advance(1)
        events.emit(
            event=Event.MIGRATING,
            event_data=EventMigratingData.model_validate({"timeRemainingSecs": 3}),
        )
        stopped = j.stopping
        with caplog.at_level(logging.INFO, logger="resumable"), pytest.raises(StoreError):
            async with asyncio.timeout(6):  # the usual budget is 10 s
                await j.__aexit__(None, None, None)
        await events.wait_for_all_listeners_to_complete()

    assert stopped
    assert "the work has stopped already, and its last save carries cursor 1" in caplog.text


async def test_two_jobs_listen_side_by_side_and_leave_cleanly() -> None:
    """Each job has its own listeners: one ending removes only its own, and a job that ended
    leaves nothing behind."""
    async with EventManager() as events:

        def listeners(event: Event) -> int:
            return len(events._listeners_to_wrappers.get(event, {}))

        store = MemoryStore()
        triggers = [ApifyEvents(event_manager=events)]
        async with job("a", cursor=0, store=store, triggers=triggers) as a:
            async with job("b", cursor=0, store=store, triggers=triggers) as b:
                b.advance(2)
                during = [listeners(e) for e in (Event.MIGRATING, Event.PERSIST_STATE)]
            after_b = [listeners(e) for e in (Event.MIGRATING, Event.PERSIST_STATE)]
            a.advance(1)
            await emitted(events, Event.PERSIST_STATE, EventPersistStateData(is_migrating=False))
            deadline = time.monotonic() + 5
            while (await store.load("a") or b"").find(b'"cursor":1') < 0:
                assert time.monotonic() < deadline, "persistState did not save job a"
                await asyncio.sleep(0.005)
        after_a = [listeners(e) for e in (Event.MIGRATING, Event.PERSIST_STATE, Event.ABORTING)]

    assert [2, 2] == during
    assert [1, 1] == after_b
    assert [0, 0, 0] == after_a


async def test_thousands_of_overlapping_jobs_on_one_manager_keep_its_events_working() -> None:
    """2,000 jobs on one event manager, each entered before the one before it ends: `emit`
    still works (no pile of hooks, no RecursionError), persistState still reaches the live
    job, migrating still pauses a job before its listener runs, and every finished job is
    garbage-collected."""
    store = MemoryStore()
    finished: set[str] = set()
    async with EventManager() as events:
        triggers = [ApifyEvents(event_manager=events)]
        previous: Job[int] | None = None
        for i in range(2_000):
            current = job(f"k{i}", cursor=0, store=store, interval=None, triggers=triggers)
            await current.__aenter__()
            current.advance(1)
            if previous is not None:
                await previous.__aexit__(None, None, None)
                finished.add(previous.key)
            previous = current
        assert previous is not None
        await emitted(events, Event.PERSIST_STATE, EventPersistStateData(is_migrating=False))
        deadline = time.monotonic() + 5
        while b'"cursor":1' not in (await store.load("k1999") or b""):
            assert time.monotonic() < deadline, "persistState did not reach the live job"
            await asyncio.sleep(0.005)
        await previous.__aexit__(None, None, None)
        del previous, current
        hooked_after_the_last = "emit" in events.__dict__

        recording = RecordingJob()
        detach = ApifyEvents(event_manager=events).attach(recording)
        await emitted(events, Event.MIGRATING, EventMigratingData.model_validate({}))
        detach()
        deadline = time.monotonic() + 5
        while alive := sum(type(o) is Job and o.key in finished for o in gc.get_objects()):
            assert time.monotonic() < deadline, f"{alive} finished jobs are still referenced"
            await asyncio.sleep(0.005)
            gc.collect()

    assert not hooked_after_the_last
    assert ["pause", "migrate"] == [name for name, _ in recording.calls]
    assert "emit" not in events.__dict__


async def test_a_job_is_not_saved_periodically_by_its_own_timer() -> None:
    """`ApifyEvents` tells the engine that persistState drives periodic saves (they cost money
    on the platform), so no timer of its own runs unless interval= is given."""
    async with (
        EventManager() as events,
        job("a", cursor=0, store=MemoryStore(), triggers=[ApifyEvents(event_manager=events)]) as a,
    ):
        interval = a.interval

    assert interval is None


async def test_outside_an_actor_apify_events_says_how_to_use_it() -> None:
    """Without a running Actor (and no event manager given) the job refuses to start."""
    with pytest.raises(RuntimeError, match="async with Actor"):
        async with job("a", cursor=0, store=MemoryStore(), triggers=[ApifyEvents()]):
            pass


def test_outside_an_actor_there_are_no_actor_defaults() -> None:
    """The core defaults apply when no Actor is running."""
    assert not actor_is_running()
    assert actor_defaults() is None


async def test_the_stand_in_delivers_events_to_a_connected_client() -> None:
    """`PlatformEvents.send` reaches every connected SDK as the platform's JSON message."""
    async with PlatformEvents() as platform, connect(platform.url) as client:
        await platform.connected(timeout=5)
        sent_to = await platform.send("migrating", {"timeRemainingSecs": 20})
        message = json.loads(await client.recv())

    assert 1 == sent_to
    assert {"name": "migrating", "data": {"timeRemainingSecs": 20}} == message


async def test_the_stand_in_refuses_to_send_into_the_void() -> None:
    """An event sent before any Actor connected is an error, not a silent no-op."""
    async with PlatformEvents() as platform:
        with pytest.raises(RuntimeError, match="no Actor is connected"):
            await platform.send("aborting")
        with pytest.raises(TimeoutError, match="0 of 1 connection"):
            await platform.connected(timeout=0.05)


async def test_the_stand_in_environment_keeps_the_actor_off_the_real_platform(
    tmp_path: Path,
) -> None:
    """The environment points the SDK at the stand-in, its API at a closed port, and keeps
    local storage unpurged."""
    async with PlatformEvents() as platform:
        home = platform.env(tmp_path)
        away = platform.env(tmp_path, at_home=False)

    assert home["APIFY_ACTOR_EVENTS_WS_URL"].startswith("ws://127.0.0.1:")
    assert home["APIFY_API_BASE_URL"].startswith("http://127.0.0.1:")
    assert ("1", "0") == (home["APIFY_IS_AT_HOME"], away["APIFY_IS_AT_HOME"])
    assert "false" == home["CRAWLEE_PURGE_ON_START"]
    assert "pricingModel" in json.loads(home["APIFY_ACTOR_PRICING_INFO"])


async def test_migrating_stops_the_job_before_any_listener_runs() -> None:
    """The job takes no new item once `migrating` is emitted, not even the one its task had
    scheduled before the listener's task could run."""
    store = MemoryStore()
    pulled: list[int] = []
    async with EventManager() as events:

        @resumable(key="early", store=store, triggers=[ApifyEvents(event_manager=events)])
        async def crawl(*, cursor: int = 0) -> AsyncIterator[int]:
            for i in range(cursor, 1_000_000):
                pulled.append(i)
                await asyncio.sleep(0)
                yield i + 1

        task = asyncio.ensure_future(crawl())
        deadline = time.monotonic() + 5
        while len(pulled) < 10:
            assert time.monotonic() < deadline, "the job did not start"
            await asyncio.sleep(0)
        events.emit(
            event=Event.MIGRATING,
            event_data=EventMigratingData.model_validate({"timeRemainingSecs": 20}),
        )
        pulled_at_emit = len(pulled)
        await events.wait_for_all_listeners_to_complete()
        saved = json.loads(await store.load("early") or b"")["cursor"]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert pulled_at_emit == len(pulled)
    assert pulled_at_emit == saved
