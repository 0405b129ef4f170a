"""The Apify SDK's and Crawlee's internals that `resumable.apify._sdk` relies on, pinned.

Each test here fails when the installed SDK moves one of them (warnings are errors, so a
fallback taken on the installed SDK fails too), and the fallback tests show that a moved
internal is reported loudly instead of silently costing fsync, locking or the early pause.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from apify.storage_clients import ApifyStorageClient
from apify.storage_clients import FileSystemStorageClient as ApifyFileSystemStorageClient
from apify.storage_clients._apify._dataset_client import ApifyDatasetClient
from apify.storage_clients._file_system._dataset_client import ApifyFileSystemDatasetClient
from apify.storage_clients._ppe_dataset_mixin import DatasetClientPpeMixin
from crawlee._consts import METADATA_FILENAME
from crawlee._types import BasicCrawlingContext, RequestHandlerRunResult
from crawlee.configuration import Configuration
from crawlee.crawlers import BasicCrawler
from crawlee.events import Event, EventManager, LocalEventManager
from crawlee.storage_clients import FileSystemStorageClient, MemoryStorageClient
from crawlee.storage_clients._file_system import (
    FileSystemDatasetClient,
    FileSystemKeyValueStoreClient,
)
from crawlee.storages import Dataset, KeyValueStore, RequestQueue

from resumable import ResumableError, ResumableWarning
from resumable.apify import _sdk
from resumable.apify import _sdk_crawler as sdk_crawler
from resumable.apify._local_files import METADATA
from resumable.testing import PlatformEvents
from resumable.testing._dataset_api import DatasetApi


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


async def test_a_dataset_is_located_through_its_client(tmp_path: Path) -> None:
    """`dataset._client` names where a dataset lives for a sink's repr: a local one's
    `path_to_dataset`, any other's backend; without a client, nothing (and no warning)."""
    local = await local_dataset(tmp_path)
    in_memory = await Dataset.open(storage_client=MemoryStorageClient())
    expected = [f"at {tmp_path / 'storage' / 'datasets' / 'default'}", "in memory", None]

    assert expected == [
        _sdk.dataset_location(local),
        _sdk.dataset_location(in_memory),
        _sdk.dataset_location(SimpleNamespace()),
    ]


async def platform_dataset(api: DatasetApi) -> Dataset:
    configuration = ApifyConfiguration(
        token="stand-in-token",  # noqa: S106 - what the stand-in accepts
        api_base_url=api.url,
        api_public_base_url=api.url,
    )
    return await Dataset.open(
        id="pinned", configuration=configuration, storage_client=ApifyStorageClient()
    )


async def test_a_platform_dataset_pushes_once_through_a_copy_without_client_retries() -> None:
    """`Dataset._client._api_client._http_client._max_retries` is the Apify client's own
    retrying of a request: the sink's copy sends each push once, and the dataset the Actor
    uses keeps its retries."""
    async with DatasetApi() as api:
        dataset = await platform_dataset(api)
        once = _sdk.pushing_once(dataset)
        await once.push_data([{"n": 1}])
        retries = (
            dataset._client._api_client._http_client._max_retries,
            once._client._api_client._http_client._max_retries,
        )

    assert 0 == retries[1] < retries[0]
    assert ([{"n": 1}], dataset.id) == (api.items["pinned"], once.id)


async def test_datasets_off_the_platform_push_as_they_are(tmp_path: Path) -> None:
    """A local dataset is returned as it is: its client does not retry by itself."""
    dataset = await local_dataset(tmp_path)

    assert dataset is _sdk.pushing_once(dataset)


async def test_a_moved_client_retry_setting_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `_max_retries` on the HTTP client, a lost reply may store a push twice: a
    warning says so, and the dataset is used as it is."""
    async with DatasetApi() as api:
        dataset = await platform_dataset(api)
        http = dataset._client._api_client._http_client
        monkeypatch.delattr(http, "_max_retries")

        with pytest.warns(ResumableWarning, match="stored twice"):
            once = _sdk.pushing_once(dataset)

    assert dataset is once


async def test_a_push_asks_the_dataset_client_what_the_run_pays_for() -> None:
    """`_compute_limit_for_push` (the SDK's `DatasetClientPpeMixin`, on its platform and local
    dataset clients) says how many items a push to the default dataset stores; on a run
    that is not pay-per-event, all of them."""
    async with DatasetApi() as api:
        dataset = await platform_dataset(api)
        allowed = _sdk.within_charge_limit(_sdk.pushing_once(dataset), 3)

    assert 3 == allowed
    assert callable(ApifyDatasetClient._compute_limit_for_push)
    assert callable(ApifyFileSystemDatasetClient._compute_limit_for_push)


async def test_a_moved_push_limit_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `_compute_limit_for_push`, a push cut at the run's maximum charge would be
    counted whole: a warning says so."""
    monkeypatch.delattr(DatasetClientPpeMixin, "_compute_limit_for_push")
    async with DatasetApi() as api:
        dataset = await platform_dataset(api)

        with pytest.warns(ResumableWarning, match="counts them all as delivered"):
            allowed = _sdk.within_charge_limit(dataset, 3)

    assert 3 == allowed


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
    assert 'pip install "resumable-jobs[apify]"' in done.stderr


# -- the crawler's internals (resumable.apify._sdk_crawler) ---------------------------------


def _crawler(tmp_path: Path) -> BasicCrawler[Any, Any]:
    return BasicCrawler(
        configuration=Configuration(storage_dir=str(tmp_path / "storage")),
        storage_client=FileSystemStorageClient(),
        event_manager=LocalEventManager(),
        configure_logging=False,
        max_requests_per_crawl=7,
    )


async def test_a_handlers_recorded_results_go_to_the_journals_commit(tmp_path: Path) -> None:
    """The crawler hands each context's recorded results to the replaced
    `_commit_request_handler_result` (its `_context_result_map`), runs the handler inside
    the replaced `_run_request_handler`, and, once undone, carries the results out itself."""
    crawler = _crawler(tmp_path)
    committed: list[tuple[str, list[Any]]] = []
    scoped: list[str] = []

    @crawler.router.default_handler
    async def handle(context: BasicCrawlingContext) -> None:
        await context.push_data({"url": context.request.url})
        await context.push_data([{"n": 1}, {"n": 2}], dataset_name="other")

    async def commit(context: BasicCrawlingContext, result: RequestHandlerRunResult) -> None:
        committed.append((context.request.url, list(sdk_crawler.recorded_items(result))))

    @contextlib.contextmanager
    def scope(context: BasicCrawlingContext) -> Iterator[None]:
        scoped.append(context.request.url)
        yield

    undo = [
        sdk_crawler.journal_results(crawler, commit),
        sdk_crawler.around_handlers(crawler, scope),
    ]
    await crawler.run(["https://shop.invalid/a"])
    for put_back in undo:
        put_back()
    await crawler.run(["https://shop.invalid/b"])
    dataset = await crawler.get_dataset()

    assert ["https://shop.invalid/a"] == scoped
    assert [
        (
            "https://shop.invalid/a",
            [
                ((None, None, None), {"url": "https://shop.invalid/a"}),
                ((None, "other", None), {"n": 1}),
                ((None, "other", None), {"n": 2}),
            ],
        )
    ] == committed
    assert [{"url": "https://shop.invalid/b"}] == (await dataset.get_data()).items


async def test_recorded_requests_are_added_as_the_crawler_adds_them(tmp_path: Path) -> None:
    """`_add_requests` resolves a recorded call against the request it came from (a relative
    link becomes absolute, the same-hostname strategy drops other hosts)."""
    crawler = _crawler(tmp_path)
    calls: list[Any] = []

    @crawler.router.default_handler
    async def handle(context: BasicCrawlingContext) -> None:
        if context.request.url.endswith("/start"):
            await context.add_requests(
                ["/next", "https://elsewhere.invalid/x"], strategy="same-hostname"
            )

    async def commit(context: BasicCrawlingContext, result: RequestHandlerRunResult) -> None:
        for call in result.add_requests_calls:
            calls.append(call)
            await sdk_crawler.add_requests_of(crawler, context, call)

    undo = sdk_crawler.journal_results(crawler, commit)
    await crawler.run(["https://shop.invalid/start"])
    undo()
    queue = await crawler.get_request_manager()

    assert 1 == len(calls)
    assert 2 == await queue.get_total_count()
    assert await queue.get_request("https://shop.invalid/next") is not None


async def test_the_request_manager_and_the_limit_are_the_crawlers(tmp_path: Path) -> None:
    """`_request_manager` is the manager the crawler runs on, and `_max_requests_per_crawl`
    its limit."""
    crawler = _crawler(tmp_path)
    queue = await crawler.get_request_manager()
    other = await RequestQueue.open(name="other", storage_client=MemoryStorageClient())

    before = sdk_crawler.swap_request_manager(crawler, other)

    assert queue is before
    assert other is await crawler.get_request_manager()
    assert 7 == sdk_crawler.request_limit(crawler)


def test_a_moved_crawler_internal_is_an_error() -> None:
    """A crawler without the internals is refused at once, naming what moved."""
    moved: Any = SimpleNamespace()

    with pytest.raises(ResumableError, match="_commit_request_handler_result"):
        sdk_crawler.journal_results(moved, lambda *_: asyncio.sleep(0))
    with pytest.raises(ResumableError, match="_request_manager"):
        sdk_crawler.swap_request_manager(moved, moved)


def test_charges_are_priced_and_counted_as_the_sdk_does(tmp_path: Path) -> None:
    """Locally with ``ACTOR_TEST_PAY_PER_EVENT``, an event without a price costs the SDK $1
    (as its budget reckons it), and the charging log, a named dataset the SDK writes, counts
    what was charged; its count is mended when a kill left it behind its entries."""
    script = textwrap.dedent(
        """
        import asyncio, json, os, pathlib
        from apify import Actor
        from resumable.apify import _sdk

        async def main():
            async with Actor(exit_process=False):
                manager = Actor.get_charging_manager()
                await Actor.charge("x", count=2)
                price = _sdk.event_price(manager, "x")
                within = manager.calculate_max_event_charge_count_within_limit("x")
                # An entry written by a process killed before it wrote the log's count:
                left = pathlib.Path(os.environ["CRAWLEE_STORAGE_DIR"], "datasets", "charging-log")
                (left / "000000002.json").write_text('{"event_name": "y", "charged_count": 1}')
                counts = await _sdk.local_charged_counts()
                log = await Actor.open_dataset(name="charging-log")
                total = (await log.get_metadata()).item_count
                print("SEEN", json.dumps([str(price), within, counts, total]))

        asyncio.run(main())
        """
    )
    env = os.environ | {
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "storage"),
        "ACTOR_TEST_PAY_PER_EVENT": "true",
        "ACTOR_MAX_TOTAL_CHARGE_USD": "5",
    }

    done = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    seen = [line for line in done.stdout.splitlines() if line.startswith("SEEN")]

    assert 0 == done.returncode, done.stderr
    assert ['SEEN ["1", 3, {"x": 2, "y": 1}, 2]'] == seen
