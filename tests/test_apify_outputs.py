"""Exactly-once dataset items: under the real Apify SDK, migrated and killed mid-run, and on
every Crawlee storage backend and the platform's API with pushes whose reply is lost."""

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
from _apify_stores import STORAGE_CLIENTS, open_dataset
from apify import Configuration as ApifyConfiguration
from apify.storage_clients import ApifyStorageClient
from crawlee.storages import Dataset

from resumable import MemoryStore, job
from resumable.apify import DatasetSink
from resumable.testing import FailingSink, PlatformEvents
from resumable.testing._dataset_api import DatasetApi

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


@pytest.mark.parametrize("backend", list(STORAGE_CLIENTS))
async def test_a_dataset_push_whose_reply_is_lost_is_read_back_not_repeated(
    backend: str, tmp_path: Path
) -> None:
    """On every Crawlee storage backend, a push that lands and then raises (a timeout after
    the dataset stored it) is settled by listing the dataset, never pushed again."""
    dataset = await open_dataset(backend, tmp_path)
    sink = FailingSink(DatasetSink(dataset), lands=True, first=1)
    async with job("lost-push", 0, store=MemoryStore(), sink=sink, triggers=[], interval=None) as j:
        j.out.extend([{"product": n} for n in range(3)])
        j.advance(1)
        await j.save()
        j.out.push({"product": 3})
        j.advance(2)

    assert [{"product": n} for n in range(4)] == (await dataset.get_data(limit=10)).items
    assert (4, 1) == (j.outcome.outputs if j.outcome else None, sink.failures)


async def test_a_dataset_sink_names_its_dataset(tmp_path: Path) -> None:
    """A DatasetSink shows its dataset as a user knows it: name, id and where it lives."""
    local = await open_dataset("files", tmp_path)
    in_memory = await open_dataset("memory", tmp_path)
    directory = tmp_path / "storage" / "datasets" / str(local.name)
    expected = [
        f"DatasetSink(dataset {local.name!r} (id {local.id!r}), at {directory})",
        f"DatasetSink(dataset {in_memory.name!r} (id {in_memory.id!r}), in memory)",
        "DatasetSink(the Actor's default dataset)",
        "DatasetSink(name='products')",
    ]

    assert expected == [
        repr(DatasetSink(local)),
        repr(DatasetSink(in_memory)),
        repr(DatasetSink()),
        repr(DatasetSink(name="products")),
    ]


@pytest.fixture
async def platform_api() -> AsyncIterator[DatasetApi]:
    """The platform's dataset API, on 127.0.0.1."""
    async with DatasetApi() as api:
        yield api


async def open_platform_dataset(api: DatasetApi, dataset_id: str = "products") -> Dataset:
    """A dataset on the (stand-in) platform, opened through the SDK's own storage client."""
    configuration = ApifyConfiguration(
        token="stand-in-token",  # noqa: S106 - what the stand-in accepts
        api_base_url=api.url,
        api_public_base_url=api.url,
    )
    api.items[dataset_id] = []
    return await Dataset.open(
        id=dataset_id, configuration=configuration, storage_client=ApifyStorageClient()
    )


async def test_a_platform_push_whose_reply_is_lost_is_read_back_not_repeated(
    platform_api: DatasetApi,
) -> None:
    """On the platform's API, a push the API stored and whose reply was lost is sent once,
    not again by the Apify client below the engine, and the engine settles it by listing."""
    dataset = await open_platform_dataset(platform_api)
    sink = DatasetSink(dataset)
    async with job(
        "lost-reply", 0, store=MemoryStore(), sink=sink, triggers=[], interval=None
    ) as j:
        j.out.extend([{"product": n} for n in range(3)])
        j.advance(1)
        platform_api.lose_replies = 1
        await j.save()
        j.out.push({"product": 3})
        j.advance(2)

    assert [{"product": n} for n in range(4)] == platform_api.items["products"]
    assert (2, 0) == (platform_api.pushes, platform_api.lose_replies)
    assert 4 == (j.outcome.outputs if j.outcome else None)
