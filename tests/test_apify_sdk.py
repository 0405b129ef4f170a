"""The Apify SDK's and Crawlee's internals that `resumable.apify._sdk` relies on, pinned.

Each test here fails when the installed SDK moves one of them (warnings are errors, so a
fallback taken on the installed SDK fails too), and the fallback tests show that a moved
internal is reported loudly instead of silently costing fsync, locking or the early pause.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from apify import Configuration as ApifyConfiguration
from apify.events import ApifyEventManager
from apify.storage_clients import FileSystemStorageClient as ApifyFileSystemStorageClient
from crawlee._consts import METADATA_FILENAME
from crawlee.configuration import Configuration
from crawlee.events import Event, EventManager
from crawlee.storage_clients import FileSystemStorageClient, MemoryStorageClient
from crawlee.storage_clients._file_system import (
    FileSystemDatasetClient,
    FileSystemKeyValueStoreClient,
)
from crawlee.storages import Dataset, KeyValueStore

from resumable import ResumableWarning
from resumable.apify import _sdk
from resumable.apify._local_files import METADATA
from resumable.testing import PlatformEvents


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    """Each test sees the once-per-process warnings afresh."""
    _sdk._warn_once.cache_clear()
    yield
    _sdk._warn_once.cache_clear()


def test_actor_is_running_inside_async_with_actor_only(tmp_path: Path) -> None:
    """`Actor.__resolved__` and `Actor._active` tell a running Actor: False before it (the
    proxy left unresolved), True inside, False after; no fallback warning on this SDK."""
    script = textwrap.dedent(
        """
        import asyncio, warnings
        from apify import Actor
        from resumable import ResumableWarning
        from resumable.apify import actor_is_running

        warnings.simplefilter("error", ResumableWarning)

        async def main():
            before = (actor_is_running(), Actor.__resolved__)
            async with Actor(exit_process=False):
                inside = actor_is_running()
            print("SEEN", before, inside, actor_is_running())

        asyncio.run(main())
        """
    )
    env = os.environ | {"CRAWLEE_STORAGE_DIR": str(tmp_path / "storage")}

    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "SEEN (False, False) True False" in done.stdout, done.stderr


def test_a_moved_active_flag_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `_active`, the Actor is taken as not running, with a warning saying what to do."""
    monkeypatch.setattr(_sdk, "Actor", SimpleNamespace(__resolved__=True))

    with pytest.warns(ResumableWarning, match=r"`_active`.*store=ApifyStore\(\)"):
        running = _sdk.actor_is_running()

    assert running is False


async def local_kvs(tmp_path: Path) -> KeyValueStore:
    configuration = Configuration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    return await KeyValueStore.open(
        configuration=configuration, storage_client=FileSystemStorageClient()
    )


async def test_the_local_layout_is_found_on_crawlee_file_system_storage(tmp_path: Path) -> None:
    """`kvs._client` is Crawlee's file-system client, whose `path_to_kvs` is the directory."""
    kvs = await local_kvs(tmp_path)

    layout = _sdk.local_layout(kvs)

    assert layout is not None
    assert tmp_path / "storage" / "key_value_stores" / "default" == layout.directory
    assert frozenset() == layout.reserved


async def test_the_input_record_is_reserved_on_apify_file_system_storage(tmp_path: Path) -> None:
    """Apify's file-system client keeps the input under `_input_key`/`_input_key_filename`."""
    directory = tmp_path / "storage" / "key_value_stores" / "default"
    directory.mkdir(parents=True)
    (directory / "INPUT.json").write_text("{}")
    configuration = ApifyConfiguration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    kvs = await KeyValueStore.open(
        configuration=configuration, storage_client=ApifyFileSystemStorageClient()
    )

    layout = _sdk.local_layout(kvs)

    assert layout is not None
    assert {"INPUT", "INPUT.json"} == layout.reserved


async def test_other_backends_have_no_local_layout() -> None:
    """A memory store goes through Crawlee's client, and that is not a fallback: no warning."""
    kvs = await KeyValueStore.open(name="sdk-pin-memory", storage_client=MemoryStorageClient())

    assert _sdk.local_layout(kvs) is None


async def test_files_are_named_as_crawlee_names_them(tmp_path: Path) -> None:
    """Our file names for keys and metadata are Crawlee's (`_encode_key`, METADATA_FILENAME)."""
    kvs = await local_kvs(tmp_path)
    client = kvs._client
    assert isinstance(client, FileSystemKeyValueStoreClient)
    keys = ["a", "job-(1)!", "x'y", "..."]

    assert [client._encode_key(k) for k in keys] == [urllib.parse.quote(k, safe="") for k in keys]
    assert METADATA_FILENAME == METADATA


def test_a_key_value_store_without_a_client_is_reported() -> None:
    """Without `_client`, losing the direct path (fsync, locking) is a warning, not silence."""
    with pytest.warns(ResumableWarning, match="no fsync|never fsyncs"):
        layout = _sdk.local_layout(SimpleNamespace())  # type: ignore[arg-type]

    assert layout is None


async def test_a_moved_file_system_client_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When Crawlee's file-system client module moves, a file-system store warns what it loses."""
    kvs = await local_kvs(tmp_path)
    monkeypatch.setattr(_sdk, "_FILE_SYSTEM_CLIENT_MODULE", "crawlee.storage_clients._gone")

    with pytest.warns(ResumableWarning, match="never fsyncs.*no lock"):
        layout = _sdk.local_layout(kvs)

    assert layout is None


async def local_dataset(tmp_path: Path) -> Dataset:
    configuration = Configuration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    return await Dataset.open(configuration=configuration, storage_client=FileSystemStorageClient())


async def test_a_local_dataset_count_left_behind_is_moved_up(tmp_path: Path) -> None:
    """`dataset._client` is Crawlee's file-system dataset client, whose `_update_metadata`
    sets the count that names the next item's file; a count ahead is left alone."""
    dataset = await local_dataset(tmp_path)
    await dataset.push_data([{"n": 0}, {"n": 1}])

    await _sdk.mend_local_count(dataset, 5)
    moved = (await dataset.get_metadata()).item_count
    await _sdk.mend_local_count(dataset, 3)

    assert 5 == moved
    assert 5 == (await dataset.get_metadata()).item_count


async def test_a_moved_dataset_count_update_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `_update_metadata`, a local dataset's lagging count is a warning, not silence."""
    dataset = await local_dataset(tmp_path)
    monkeypatch.delattr(FileSystemDatasetClient, "_update_metadata")

    with pytest.warns(ResumableWarning, match="overwrite items"):
        await _sdk.mend_local_count(dataset, 5)

    assert 0 == (await dataset.get_metadata()).item_count


async def test_datasets_elsewhere_are_left_alone() -> None:
    """A dataset on another backend (memory here, the platform in production) is not touched."""
    dataset = await Dataset.open(storage_client=MemoryStorageClient())

    await _sdk.mend_local_count(dataset, 5)

    assert 0 == (await dataset.get_metadata()).item_count


async def test_every_platform_message_passes_through_the_managers_emit() -> None:
    """The Apify event manager dispatches each websocket message through `self.emit`, and
    `emit` only starts listener tasks: the hook sees `migrating` before any listener runs."""
    seen: list[str] = []
    listened = asyncio.Event()

    async def listener() -> None:
        seen.append("listener")
        listened.set()

    async with PlatformEvents() as platform:
        configuration = ApifyConfiguration(actor_events_ws_url=platform.url)
        async with ApifyEventManager(configuration) as manager:
            await platform.connected(timeout=10)
            manager.on(event=Event.MIGRATING, listener=listener)
            unhook = _sdk.hook_emit(manager, lambda event, _: seen.append(f"hook {event.value}"))
            await platform.send("migrating", {"timeRemainingSecs": 20})
            async with asyncio.timeout(10):
                await listened.wait()
            assert unhook is not None
            removed = unhook()
            manager.off(event=Event.MIGRATING, listener=listener)

    assert ["hook migrating", "listener"] == [s for s in seen if "persistState" not in s]
    assert removed
    assert "emit" not in manager.__dict__


async def test_unhooking_restores_an_earlier_instance_emit() -> None:
    """A hook put in over another instance-level `emit` puts that one back when it leaves."""
    async with EventManager() as manager:
        calls: list[str] = []

        def earlier(*, event: Event, event_data: Any) -> None:
            calls.append("earlier")

        manager.__dict__["emit"] = earlier
        unhook = _sdk.hook_emit(manager, lambda event, _: calls.append("hook"))
        manager.emit(event=Event.ABORTING, event_data=None)
        assert unhook is not None
        unhook()
        manager.emit(event=Event.ABORTING, event_data=None)
        del manager.__dict__["emit"]

    assert ["hook", "earlier", "earlier"] == calls


def test_an_event_manager_that_cannot_be_hooked_is_reported() -> None:
    """Without an instance `emit` to replace, the lost early pause is a warning."""
    with pytest.warns(ResumableWarning, match="one more item"):
        unhook = _sdk.hook_emit(object(), lambda event, _: None)  # type: ignore[arg-type]

    assert unhook is None


def test_without_the_sdk_the_import_says_which_extra_to_install() -> None:
    """`import resumable.apify` without the Apify SDK names the extra to install."""
    script = "import sys; sys.modules['apify'] = None; import resumable.apify"

    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )

    assert 1 == done.returncode
    assert 'pip install "resumable[apify]"' in done.stderr
