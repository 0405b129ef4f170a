"""examples/apify_actor: the example Actor resumes after a migration, and locally after Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from resumable._platform import PlatformEvents

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 40
# Runs the example as `python -m examples.apify_actor` does, after connecting it to the stand-in.
LAUNCHER = (
    "import runpy; from resumable._platform import use_stand_in; use_stand_in(); "
    "runpy.run_module('examples.apify_actor', run_name='__main__', alter_sys=True)"
)


class Example:
    """One storage directory and the runs of the example Actor on it."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.storage = tmp_path / "storage"
        kvs = self.storage / "key_value_stores" / "default"
        kvs.mkdir(parents=True)
        (kvs / "INPUT.json").write_text(json.dumps({"items": ITEMS, "delayMillis": 20}))
        self.env = os.environ | env
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        )
        self.runs = 0
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *args: str) -> None:
        self.runs += 1
        with (self.tmp_path / f"run{self.runs}.err").open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=ROOT,
                env=self.env,
                stdout=err,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
            )

    def log(self) -> str:
        return (self.tmp_path / f"run{self.runs}.err").read_text(errors="replace")

    def pushed(self) -> list[int]:
        """The `item` of every dataset record, in the order pushed."""
        files = sorted((self.storage / "datasets" / "default").glob("0*.json"))
        return [json.loads(f.read_text())["item"] for f in files]

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(
            (self.storage / "key_value_stores" / "default" / "items").read_text()
        )
        return record

    async def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"the example did not end; its log:\n{self.log()}") from None


async def eventually(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.005)


@pytest.fixture
async def platform() -> AsyncIterator[PlatformEvents]:
    async with PlatformEvents() as events:
        yield events


async def test_the_example_actor_resumes_after_a_migration(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """Migrated (and killed) halfway, the example Actor continues on its next start from the
    cursor it saved; every item reaches the dataset exactly once."""
    example = Example(tmp_path, platform.env(tmp_path / "storage"))
    await example.start("-c", LAUNCHER)
    await platform.connected(timeout=30)
    # Records reach the dataset with the saves, which the platform's persistState drives.
    deadline = time.monotonic() + 30
    while len(example.pushed()) < 10:
        assert time.monotonic() < deadline, "10 items pushed: not within 30 s"
        await platform.send("persistState", {"isMigrating": False})
        await asyncio.sleep(0.05)

    await platform.send("migrating", {"timeRemainingSecs": 20})
    await eventually(
        lambda: "waiting for the platform to stop this process" in example.log(), "parked"
    )
    assert example.process is not None
    example.process.send_signal(signal.SIGKILL)
    await example.process.wait()
    saved = example.record()["cursor"]

    await example.start("-c", LAUNCHER)

    assert 0 == await example.wait(), example.log()
    counts = Counter(example.pushed())
    assert set(range(ITEMS)) == set(counts)
    assert {} == {item: n for item, n in counts.items() if n != 1}
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item {saved}" in example.log()
    assert "completed" == example.record()["status"]


async def test_the_example_actor_resumes_locally_after_ctrl_c(tmp_path: Path) -> None:
    """Run as its README says (``python -m examples.apify_actor``, purge off), interrupted
    with Ctrl-C and run again, the example finishes the remaining items, each pushed once."""
    example = Example(
        tmp_path,
        {
            "CRAWLEE_STORAGE_DIR": str(tmp_path / "storage"),
            "CRAWLEE_PURGE_ON_START": "false",
            # Saves (and with them the records) every 100 ms instead of every minute.
            "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS": "100",
        },
    )
    await example.start("-m", "examples.apify_actor")
    await eventually(lambda: len(example.pushed()) >= 5, "5 items pushed")

    assert example.process is not None
    example.process.send_signal(signal.SIGINT)

    assert 0 == await example.wait(), example.log()
    assert "Run aborted at item" in example.log()

    await example.start("-m", "examples.apify_actor")

    assert 0 == await example.wait(), example.log()
    assert list(range(ITEMS)) == sorted(example.pushed())
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item" in example.log()
