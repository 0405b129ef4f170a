"""`ApifyStore`: what it adds to the store contract on Crawlee's key-value stores."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

import pytest
from _apify_stores import APIFY_STORE_FACTORIES, unique_name
from apify import Configuration as ApifyConfiguration
from apify.storage_clients import FileSystemStorageClient as ApifyFileSystemStorageClient
from crawlee import service_locator
from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient, MemoryStorageClient
from crawlee.storage_clients._file_system import FileSystemKeyValueStoreClient
from crawlee.storages import KeyValueStore

from resumable import CorruptStateError, InvalidKeyError, ResumableWarning, job
from resumable.apify import ApifyStore
from resumable.apify import _purge as purge_module
from resumable.apify import _store as store_module

RECORD = {"resumable": 1, "key": "k", "cursor": 7, "status": "running", "seq": 1}


def encoded(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


@pytest.fixture(params=sorted(APIFY_STORE_FACTORIES))
async def apify_store(request: pytest.FixtureRequest, tmp_path: Path) -> ApifyStore:
    """`ApifyStore` over each Crawlee backend in turn, empty."""
    store = await APIFY_STORE_FACTORIES[request.param](tmp_path)
    assert isinstance(store, ApifyStore)
    return store


async def test_records_are_json_for_the_console(apify_store: ApifyStore) -> None:
    """A record reads back through Crawlee as a JSON object with content type application/json."""
    await apify_store.save("job-1", encoded(RECORD))
    kvs = await apify_store.open()

    record = await kvs._client.get_value(key="job-1")

    assert record is not None
    assert "application/json" in record.content_type
    assert RECORD == record.value
    assert RECORD == json.loads(await apify_store.load("job-1") or b"")


async def test_bytes_that_are_not_json_round_trip(apify_store: ApifyStore) -> None:
    """A quarantined record (any bytes) is kept byte for byte, as a binary record."""
    data = b"\xff{not json"
    await apify_store.save("job-1.corrupt-1", data)

    assert data == await apify_store.load("job-1.corrupt-1")


async def test_keys_lists_only_resumable_records(apify_store: ApifyStore) -> None:
    """Other records in the key-value store (INPUT, OUTPUT, ...) are not listed as jobs."""
    kvs = await apify_store.open()
    await kvs.set_value("OUTPUT", {"items": 3})
    await kvs.set_value("notes", "plain text")
    await apify_store.save("b-job", encoded(RECORD))
    await apify_store.save("a-job", encoded(RECORD))

    assert ["a-job", "b-job"] == await apify_store.keys()


async def test_guard_sees_the_current_record_and_can_veto(apify_store: ApifyStore) -> None:
    """The guard gets the stored record; when it raises, the store keeps the old one."""
    await apify_store.save("job-1", encoded(RECORD))
    seen: list[bytes | None] = []

    def veto(current: bytes | None) -> None:
        seen.append(current)
        raise RuntimeError("taken over")

    with pytest.raises(RuntimeError, match="taken over"):
        await apify_store.save("job-1", encoded({**RECORD, "seq": 2}), guard=veto)

    assert [RECORD] == [json.loads(s or b"") for s in seen]
    assert RECORD == json.loads(await apify_store.load("job-1") or b"")


async def test_a_job_resumes_from_each_backend(apify_store: ApifyStore) -> None:
    """A job interrupted after some cursors starts again where it stopped, on every backend."""
    async with job("backfill", cursor=0, store=apify_store, triggers=[]) as first:
        for i in range(first.cursor, 5):
            first.advance(i + 1)

    async with job("backfill", cursor=0, store=apify_store, triggers=[]) as second:
        resumed_at = second.cursor

    assert 5 == resumed_at


async def local_store(tmp_path: Path) -> tuple[ApifyStore, FileSystemKeyValueStoreClient]:
    store = ApifyStore.local(tmp_path / "storage")
    kvs = await store.open()
    client = kvs._client
    assert isinstance(client, FileSystemKeyValueStoreClient)
    return store, client


async def fresh_crawlee_client(tmp_path: Path) -> FileSystemKeyValueStoreClient:
    """A new Crawlee client on the same directory, as another process would open it."""
    return await FileSystemKeyValueStoreClient.open(
        id=None,
        name=None,
        alias=None,
        configuration=Configuration(storage_dir=str(tmp_path / "storage")),
    )


async def test_a_fresh_start_logs_no_warning_on_any_backend(
    apify_store: ApifyStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A key with no record yet is no news: no backend's client (Crawlee's Redis one says
    "Metadata for key ... is missing or invalid") warns about it on a fresh start."""
    with caplog.at_level(logging.WARNING):
        async with job("fresh", 0, store=apify_store, triggers=[], interval=None) as j:
            j.advance(1)

    assert [] == [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not j.resumed


async def test_a_record_without_its_metadata_is_still_reported(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Quiet about a missing key, not about a damaged one: a value whose metadata is gone
    (Crawlee's Redis client cannot read it) is reported as corrupt, and left as it is."""
    store = await APIFY_STORE_FACTORIES["apify-redis"](tmp_path)
    assert isinstance(store, ApifyStore)
    kvs = await store.open()
    await kvs.set_value("torn", RECORD)
    # Torn as a crash between Crawlee's two writes would leave it.
    client = kvs._client
    await client._redis.hdel(client._metadata_items_key, "torn")

    with pytest.raises(CorruptStateError):
        async with job("torn", 0, store=store, triggers=[], interval=None):
            pass

    assert await kvs.record_exists("torn")


async def test_direct_writes_read_back_through_crawlee(tmp_path: Path) -> None:
    """Records written the short way are what Crawlee's own client reads and lists."""
    store, _ = await local_store(tmp_path)
    await store.save("job-(1)!", encoded(RECORD))
    await store.save("job-(1)!", encoded({**RECORD, "seq": 12345}))

    crawlee = await fresh_crawlee_client(tmp_path)
    record = await crawlee.get_value(key="job-(1)!")
    listed = [m async for m in crawlee.iterate_keys()]

    assert record is not None
    assert {**RECORD, "seq": 12345} == record.value
    assert "application/json; charset=utf-8" == record.content_type
    assert [("job-(1)!", record.size)] == [(m.key, m.size) for m in listed]
    assert await crawlee.record_exists(key="job-(1)!")


async def test_records_written_by_crawlee_load_the_short_way(tmp_path: Path) -> None:
    """A record Crawlee wrote (e.g. by an older version) loads through the direct path."""
    store, client = await local_store(tmp_path)
    await client.set_value(key="job-1", value=RECORD)

    assert RECORD == json.loads(await store.load("job-1") or b"")
    assert ["job-1"] == await store.keys()


async def test_delete_removes_the_record_and_its_metadata(tmp_path: Path) -> None:
    """After delete, Crawlee no longer sees the record either."""
    store, _ = await local_store(tmp_path)
    await store.save("job-1", encoded(RECORD))
    await store.delete("job-1")

    crawlee = await fresh_crawlee_client(tmp_path)

    assert not await crawlee.record_exists(key="job-1")
    assert [] == sorted(p.name for p in crawlee.path_to_kvs.iterdir() if "job" in p.name)


async def test_a_local_save_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every local save flushes the record file and the directory to the disk."""
    store, _ = await local_store(tmp_path)
    await store.save("job-1", encoded(RECORD))
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await store.save("job-1", encoded({**RECORD, "seq": 2}))

    # The record file and the directory; the metadata is unchanged (same size), so not rewritten.
    assert 2 == len(synced)


async def test_the_guarded_write_holds_the_directory_lock(tmp_path: Path) -> None:
    """Check and write happen under an exclusive lock, so other resumable writers wait."""
    store, client = await local_store(tmp_path)
    held: list[bool] = []

    def guard(current: bytes | None) -> None:
        fd = os.open(client.path_to_kvs, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append(True)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            held.append(False)
        finally:
            os.close(fd)

    await store.save("job-1", encoded(RECORD), guard=guard)

    assert [True] == held


async def test_leftover_temporary_files_are_invisible(tmp_path: Path) -> None:
    """A crash between writing the temporary file and renaming it leaves no phantom key."""
    store, client = await local_store(tmp_path)
    await store.save("job-1", encoded(RECORD))
    (client.path_to_kvs / ".job-1.resumable-tmp").write_bytes(b'{"resumable": 1, "seq": 99')

    crawlee = await fresh_crawlee_client(tmp_path)

    assert ["job-1"] == await store.keys()
    assert ["job-1"] == [m.key async for m in crawlee.iterate_keys()]
    assert RECORD == json.loads(await store.load("job-1") or b"")


async def test_cli_location_names_the_local_storage(tmp_path: Path) -> None:
    """The default store of local storage can be reset from the command line; others cannot."""
    store, _ = await local_store(tmp_path)
    memory = ApifyStore(
        await KeyValueStore.open(name=unique_name(), storage_client=MemoryStorageClient())
    )
    await memory.open()

    assert f"apify:{tmp_path / 'storage'}" == store.cli_location
    assert memory.cli_location is None


@pytest.fixture
def unwarned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge warning not given yet in this process (it is given once per process)."""
    monkeypatch.setattr(purge_module, "_warned", False)


async def open_default_store(
    configuration: Configuration, monkeypatch: pytest.MonkeyPatch
) -> KeyValueStore:
    """The default key-value store of local storage, opened as inside an Actor run with
    *configuration*."""
    monkeypatch.setattr(service_locator, "get_configuration", lambda: configuration)
    return await KeyValueStore.open(
        configuration=configuration, storage_client=FileSystemStorageClient()
    )


async def open_under_apify_run(storage: Path, monkeypatch: pytest.MonkeyPatch) -> KeyValueStore:
    """The default key-value store as `apify run` starts an Actor with an input schema: the
    input under the CLI's own key, and CRAWLEE_PURGE_ON_START=0 whether it purged or not."""
    configuration = ApifyConfiguration(
        storage_dir=str(storage), purge_on_start=False, input_key="__CLI_INPUT"
    )
    return await open_default_store(configuration, monkeypatch)


@pytest.mark.usefixtures("unwarned")
async def test_purge_on_start_is_detected_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unnamed local store that Crawlee purges at start warns, once, saying how to resume
    under the Apify CLI and without it."""
    configuration = Configuration(storage_dir=str(tmp_path / "storage"), purge_on_start=True)
    kvs = await open_default_store(configuration, monkeypatch)
    monkeypatch.setattr(store_module, "actor_is_running", lambda: True)  # a local Actor run

    with pytest.warns(ResumableWarning) as warned:
        await ApifyStore(kvs).open()
    await ApifyStore(kvs).open()  # no second warning: filterwarnings=error would raise

    message = str(warned[0].message)
    assert "is purged each time the Actor starts locally" in message
    assert "`apify run --no-purge` (or `apify run --resurrect`)" in message
    assert "CRAWLEE_PURGE_ON_START=false" in message


@pytest.mark.usefixtures("unwarned")
async def test_a_run_the_apify_cli_started_without_state_warns_with_its_switches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started by `apify run` (the input under the CLI's own key, CRAWLEE_PURGE_ON_START=0),
    an empty default store may have been purged by the CLI: the warning names its switches."""
    kvs = await open_under_apify_run(tmp_path / "storage", monkeypatch)

    with pytest.warns(ResumableWarning) as warned:
        await ApifyStore(kvs).open()

    message = str(warned[0].message)
    assert "`apify run` started this Actor with no job state" in message
    assert "`apify run --no-purge` (or `apify run --resurrect`)" in message


@pytest.mark.usefixtures("unwarned")
async def test_a_run_the_apify_cli_started_on_saved_state_does_not_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job record in the default store shows that `apify run` kept the storage: no warning
    (filterwarnings=error would raise one)."""
    storage = tmp_path / "storage"
    await ApifyStore.local(storage).save("items", encoded(RECORD))
    kvs = await open_under_apify_run(storage, monkeypatch)

    store = ApifyStore(kvs)
    await store.open()

    assert ["items"] == await store.keys()


@pytest.mark.usefixtures("unwarned")
async def test_a_run_without_purge_started_by_python_itself_does_not_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the Apify CLI, CRAWLEE_PURGE_ON_START=false is the whole story: an empty store
    is a fresh start, not a purge (filterwarnings=error would raise a warning)."""
    configuration = ApifyConfiguration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    kvs = await open_default_store(configuration, monkeypatch)

    await ApifyStore(kvs).open()


async def test_a_named_store_is_not_purged_and_does_not_warn(tmp_path: Path) -> None:
    """Named stores outlive runs, so purge-on-start does not concern them."""
    configuration = Configuration(storage_dir=str(tmp_path / "storage"), purge_on_start=True)
    kvs = await KeyValueStore.open(
        name=unique_name(), configuration=configuration, storage_client=FileSystemStorageClient()
    )

    await ApifyStore(kvs).open()


def test_kvs_and_name_exclude_each_other() -> None:
    """Passing both a store and a name is a mistake caught at once."""
    with pytest.raises(TypeError, match="not both"):
        ApifyStore(object(), name="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "why"),
    [(".", "names a directory"), ("..", "names a directory"), ("a" * 223, "too long")],
)
async def test_keys_no_file_can_be_named_after_are_refused_at_once(
    tmp_path: Path, key: str, why: str
) -> None:
    """On local storage, `.`, `..` and keys whose files' names pass 255 bytes raise
    InvalidKeyError at the job's start, naming the key and the store, with no retries."""
    store = ApifyStore.local(tmp_path / "storage")

    with pytest.raises(InvalidKeyError, match=why) as raised:
        async with job(key, cursor=0, store=store, triggers=[], interval=None):
            pass

    assert repr(key) in str(raised.value)
    assert repr(store) in str(raised.value)
    assert "key=" in str(raised.value)


async def test_the_longest_key_local_storage_holds_reads_back_through_crawlee(
    tmp_path: Path,
) -> None:
    """A key at the limit (222 plain characters) is stored, and Crawlee reads it back."""
    store, _ = await local_store(tmp_path)
    key = "k" * 222
    await store.save(key, encoded(RECORD))

    crawlee = await fresh_crawlee_client(tmp_path)
    record = await crawlee.get_value(key=key)

    assert record is not None
    assert RECORD == record.value


async def test_the_actors_input_record_is_refused_as_a_key(tmp_path: Path) -> None:
    """A job keyed like the Actor's input would overwrite it: refused, naming the key."""
    configuration = ApifyConfiguration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    kvs = await KeyValueStore.open(
        name=unique_name(),
        configuration=configuration,
        storage_client=ApifyFileSystemStorageClient(),
    )

    with pytest.raises(InvalidKeyError, match="'INPUT' is the Actor's input record"):
        await ApifyStore(kvs).save("INPUT", encoded(RECORD))
