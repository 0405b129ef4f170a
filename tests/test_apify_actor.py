"""A real Actor (the Apify SDK in a child process) against a stand-in of the platform's events.

Each scenario runs `apify_child.py`, which processes items 0..N-1 with one cursor per item
and logs every item it starts; the platform's events come from `PlatformEvents`; the child
is killed as the platform would kill it, started again on the same storage, and the item
log shows what ran how often.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from resumable.testing import ActorProcess, PlatformEvents

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("apify_child.py")
ITEMS = 300
T = TypeVar("T")


async def eventually(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll *check* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.005)


class ActorRuns(ActorProcess):
    """The test Actor (`apify_child.py`, unmodified) against one stand-in, one item log."""

    def __init__(self, platform: PlatformEvents, tmp_path: Path, *, at_home: bool = True) -> None:
        self.items_log = tmp_path / "items.log"
        super().__init__(
            CHILD,
            "--items",
            str(ITEMS),
            "--log",
            str(self.items_log),
            platform=platform,
            directory=tmp_path,
            at_home=at_home,
        )

    def processed(self) -> list[int]:
        """Every item started so far, in order, across all runs."""
        if not self.items_log.exists():
            return []
        return [int(line) for line in self.items_log.read_text().split()]

    def record(self) -> dict[str, Any] | None:
        """The job's record as it is on the disk now (the key-value store's file)."""
        record: dict[str, Any] | None = self.value("items")
        return record

    def outcome(self) -> dict[str, Any]:
        """The `Outcome` the current run printed."""
        lines = [line for line in self.output().splitlines() if line.startswith("OUTCOME ")]
        assert lines, f"the run printed no outcome; its log:\n{self.log()[-3000:]}"
        outcome: dict[str, Any] = json.loads(lines[-1].removeprefix("OUTCOME "))
        return outcome

    async def until_processed(self, count: int) -> int:
        """Wait until *count* items were started; return how many there are."""
        return await self.until(
            lambda: len(self.processed()) >= count and len(self.processed()),
            what=f"{count} items processed",
        )

    async def until_logged_at(self, text: str, timeout: float = 30) -> float:
        """Wait until the current run logs *text*; return when (monotonic)."""
        await self.until_logged(text, timeout=timeout)
        return time.monotonic()

    async def finish(self, timeout: float = 60) -> int:
        """Wait for the current run to exit on its own; return its exit code."""
        return await self.wait(timeout)


@pytest.fixture
async def platform() -> AsyncIterator[PlatformEvents]:
    """The platform's events websocket, on 127.0.0.1."""
    async with PlatformEvents() as events:
        yield events


def assert_resumed_correctly(runs: ActorRuns, resumed_from: int) -> None:
    """Every item ran at least once; those before the resume point exactly once."""
    counts = Counter(runs.processed())
    final = runs.record()

    assert set(range(ITEMS)) == set(counts)
    assert {} == {item: n for item, n in counts.items() if item < resumed_from and n != 1}
    assert final is not None
    assert ("completed", ITEMS) == (final["status"], final["cursor"])


@pytest.mark.parametrize("at_home", [True, False], ids=["at-home", "local-sdk"])
async def test_migration_saves_the_latest_cursor_stops_and_resumes(
    platform: PlatformEvents, tmp_path: Path, at_home: bool
) -> None:
    """On `migrating` the latest yielded cursor is persisted at once, no further item starts,
    and after a SIGKILL the next run resumes from it and completes."""
    runs = ActorRuns(platform, tmp_path, at_home=at_home)
    await runs.start()
    before = await runs.until_processed(50)

    await platform.send("migrating", {"timeRemainingSecs": 20})
    saved = await eventually(
        lambda: (r := runs.record()) is not None and r["cursor"] >= before - 1 and r,
        timeout=5,
        what="the latest cursor persisted",
    )
    await runs.until_logged("waiting for the platform to stop this process")
    parked = runs.record()
    processed = len(runs.processed())
    await runs.kill()
    assert parked is not None

    assert "running" == saved["status"]
    assert processed == parked["cursor"]
    assert "ApifyStore(" in runs.log()

    await runs.start()

    assert 0 == await runs.finish()
    assert ("completed", parked["cursor"]) == (
        runs.outcome()["status"],
        runs.outcome()["resumed_from"],
    )
    assert_resumed_correctly(runs, parked["cursor"])


async def test_a_concurrent_crawl_migrated_mid_way_loses_no_item(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """`concurrently` under the real SDK: items finish out of order, the persisted watermark
    never passes an unfinished one, so after migrating, a SIGKILL and a restart every item
    is done, and every item before the saved watermark was done exactly once."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start("--concurrent", "8")
    await runs.until_processed(60)

    await platform.send("migrating", {"timeRemainingSecs": 20})
    await runs.until_logged("waiting for the platform to stop this process")
    saved = runs.record()
    done_before_kill = set(runs.processed())
    await runs.kill()
    assert saved is not None

    assert set(range(saved["cursor"])) <= done_before_kill

    await runs.start("--concurrent", "8")

    assert 0 == await runs.finish()
    assert saved["cursor"] == runs.outcome()["resumed_from"]
    assert_resumed_correctly(runs, saved["cursor"])


async def test_abort_saves_closes_the_job_and_ends_aborted(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """On `aborting` the latest cursor is persisted with status aborted, the run ends
    "aborted" and the Actor exits; the next run resumes from that cursor."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start()
    before = await runs.until_processed(50)

    await platform.send("aborting")

    assert 0 == await runs.finish()
    outcome = runs.outcome()
    record = runs.record()
    assert record is not None
    assert ("aborted", "aborted") == (outcome["status"], record["status"])
    assert outcome["cursor"] == record["cursor"]
    assert record["cursor"] >= before - 1

    await runs.start()

    assert 0 == await runs.finish()
    assert record["cursor"] == runs.outcome()["resumed_from"]
    assert_resumed_correctly(runs, record["cursor"])


async def test_persist_state_saves_and_the_job_keeps_running(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """`persistState` writes the latest cursor and the job goes on; a crash after it costs
    only the items since."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start()
    before = await runs.until_processed(50)

    await platform.send("persistState", {"isMigrating": False})
    saved = await eventually(
        lambda: (r := runs.record()) is not None and r["cursor"] >= before - 1 and r,
        timeout=5,
        what="the cursor persisted on persistState",
    )
    await runs.until_processed(saved["cursor"] + 30)
    await runs.kill()

    assert "running" == saved["status"]

    await runs.start()

    assert 0 == await runs.finish()
    assert saved["cursor"] == runs.outcome()["resumed_from"]
    assert_resumed_correctly(runs, saved["cursor"])


async def test_a_store_failing_transiently_during_migration_is_retried_within_budget(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """Transient store errors during a migration are retried inside the event's budget: the
    cursor is saved and no failure is reported."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start("--failures", "3")
    before = await runs.until_processed(50)

    sent = time.monotonic()
    await platform.send("migrating", {"timeRemainingSecs": 10})
    await eventually(
        lambda: (r := runs.record()) is not None and r["cursor"] >= before - 1,
        timeout=10,
        what="the latest cursor persisted despite the failures",
    )
    saved_after = time.monotonic() - sent
    # Logged whether the listener saved first or the paused work stopped first.
    await runs.until_logged("waiting for the platform to stop this process")
    log = runs.log()
    await runs.kill()

    assert saved_after < 8
    assert "could not save before migration" not in log


async def test_a_store_that_never_recovers_is_reported_before_the_budget_runs_out(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """When the store keeps failing, the failure is logged at ERROR before the platform's
    time is up; the next run still processes every item at least once."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start("--failures", "1000000")
    await runs.until_processed(50)

    sent = time.monotonic()
    await platform.send("migrating", {"timeRemainingSecs": 4})
    logged = await runs.until_logged_at("could not save before migration", timeout=4)
    log = runs.log()
    record = runs.record()
    await runs.kill()

    assert logged - sent < 4
    assert "ERROR" in next(line for line in log.splitlines() if "could not save" in line)
    assert record is not None
    assert 0 == record["cursor"]

    await runs.start()

    assert 0 == await runs.finish()
    assert_resumed_correctly(runs, 0)


async def test_a_reboot_is_a_checkpoint(platform: PlatformEvents, tmp_path: Path) -> None:
    """`Actor.reboot()` fires the migration listeners: the cursor is persisted before the
    platform restarts the container, and the next run resumes from it."""
    runs = ActorRuns(platform, tmp_path)
    await runs.start("--reboot-at", "60")

    await eventually(
        lambda: (r := runs.record()) is not None and r["cursor"] >= 60,
        timeout=30,
        what="the cursor persisted by the reboot",
    )
    record = runs.record()
    await runs.kill()  # the stand-in has no API to reboot with; the platform would stop it
    assert record is not None

    await runs.start()

    assert 0 == await runs.finish()
    assert_resumed_correctly(runs, record["cursor"])


async def test_progress_is_shown_as_the_status_message(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """`ApifyStatus` sets the run's status message with items done, rate and saved cursor
    (not at home, the SDK logs it)."""
    runs = ActorRuns(platform, tmp_path, at_home=False)
    await runs.start("--status-interval", "0.2")

    await runs.until_logged("[Status message]: items: ")
    await runs.kill()

    line = next(line for line in runs.log().splitlines() if "[Status message]" in line)
    assert "done this run (" in line
    assert "/s), saved at " in line


async def test_local_purge_on_start_is_reported_with_the_fix(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """Run locally with Crawlee's default purge-on-start, the Actor is told that its state
    will not survive a restart and how to fix that."""
    runs = ActorRuns(platform, tmp_path, at_home=False)
    await runs.start(env={"CRAWLEE_PURGE_ON_START": "true"})

    await runs.until_logged("CRAWLEE_PURGE_ON_START=false")
    await runs.kill()
