"""Exactly-once dataset items under the real Apify SDK, migrated and killed mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from resumable.apify import DatasetSink
from resumable.testing import PlatformEvents

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("apify_outbox_child.py")
ROOT = CHILD.parent.parent
ITEMS = 400


@pytest.fixture
async def platform() -> AsyncIterator[PlatformEvents]:
    """The platform's events websocket, on 127.0.0.1."""
    async with PlatformEvents() as events:
        yield events


async def until(check: object, what: str, timeout: float = 30) -> None:
    """Poll *check* (a callable) until it is true; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.005)


def dataset(storage: Path) -> list[int]:
    """The default dataset's items, in order, as the local storage keeps them."""
    folder = storage / "datasets" / "default"
    files = sorted(p for p in folder.glob("*.json") if p.name != "__metadata__.json")
    return [json.loads(p.read_text())["product"] for p in files]


async def test_migrated_twice_and_killed_once_each_item_lands_once(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """Two migrations and a SIGKILL without warning: the dataset holds each item once."""
    storage, log = tmp_path / "storage", tmp_path / "items.log"
    env = os.environ | platform.env(storage, at_home=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    def pushed() -> int:
        return len(log.read_text().split()) if log.exists() else 0

    runs = 0

    async def start() -> tuple[asyncio.subprocess.Process, Path]:
        nonlocal runs
        runs += 1
        err = tmp_path / f"run{runs}.err"
        with (tmp_path / f"run{runs}.out").open("wb") as out, err.open("wb") as errors:
            child = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), str(ITEMS), str(log), env=env, stdout=out, stderr=errors
            )
        await platform.connected(timeout=30, count=runs)
        return child, err

    for step in ("migrate", "migrate", "kill"):
        child, err = await start()
        target = pushed() + 60
        await until(lambda target=target: pushed() >= target, "items pushed")
        if step == "migrate":
            await platform.send("migrating", {"timeRemainingSecs": 20})
            await until(
                lambda err=err: (
                    "waiting for the platform to stop" in err.read_text(errors="replace")
                ),
                "parked after migrating",
            )
        child.send_signal(signal.SIGKILL)
        await child.wait()

    child, err = await start()
    async with asyncio.timeout(60):
        code = await child.wait()

    assert 0 == code, err.read_text()[-3000:]
    assert list(range(ITEMS)) == dataset(storage)


async def open_local_dataset(storage: Path) -> Any:
    """The default dataset of local storage under *storage*, opened as a new process would."""
    from crawlee.configuration import Configuration
    from crawlee.storage_clients._file_system import FileSystemDatasetClient
    from crawlee.storages import Dataset

    configuration = Configuration(storage_dir=str(storage), purge_on_start=False)
    client = await FileSystemDatasetClient.open(
        id=None, name=None, alias=None, configuration=configuration
    )
    metadata = await client.get_metadata()
    return Dataset(client, metadata.id, metadata.name)


async def test_a_kill_between_the_item_files_and_the_count_loses_nothing(tmp_path: Path) -> None:
    """Crawlee's local dataset writes its item files, then its count: a kill in between leaves
    the count behind. The items the engine finds there are kept, and later ones go after them
    instead of over them."""
    first = DatasetSink(await open_local_dataset(tmp_path))
    await first.append([{"product": n} for n in range(10)], 0)
    metadata = tmp_path / "datasets" / "default" / "__metadata__.json"
    fields = json.loads(metadata.read_text())
    metadata.write_text(json.dumps(fields | {"itemCount": 4}))  # as the kill left it

    second = DatasetSink(await open_local_dataset(tmp_path))
    assert [{"product": n} for n in range(10)] == await second.read(0, 20)
    await second.append([{"product": n} for n in range(10, 15)], 10)

    assert list(range(15)) == dataset(tmp_path)
    assert 15 == await second.count()
