"""Shared fixtures: every store the contract tests run against, and the servers they need."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from servers import PostgresServer, RedisServer, serving

from resumable import FileStore, MemoryStore, Store
from resumable.redis import RedisStore
from resumable.sql import SQLStore

StoreFactory = Callable[[Path], Awaitable[Store]]


async def _memory(tmp_path: Path) -> Store:
    return MemoryStore()


async def _file(tmp_path: Path) -> Store:
    return FileStore(tmp_path / "state")


async def _sqlite(tmp_path: Path) -> Store:
    return SQLStore(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite'}")


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "file": _file,
    "sql-sqlite": _sqlite,
}
"""Every store the contract runs over; the Apify stores add themselves in test_apify_store.py."""

from _apify_stores import APIFY_STORE_FACTORIES  # noqa: E402 - beside the list it extends

STORE_FACTORIES.update(APIFY_STORE_FACTORIES)

SERVER_STORE_FACTORIES: dict[str, tuple[str, Callable[[str], Store]]] = {
    "redis": ("redis_server", lambda url: RedisStore(url, prefix=f"test-{uuid.uuid4().hex}:")),
    "sql-postgres": ("postgres_server", lambda url: SQLStore(url, table=unique_table())),
}
"""The stores on a server: the session fixture that starts it, and the store on its URL."""


def unique_table() -> str:
    """A table name of its own for each test on the session's PostgreSQL server."""
    return f"state_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` for the whole session (skipped without one, except under CI)."""
    with serving(RedisServer, "the RedisStore tests") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the whole session (skipped without one, except under CI)."""
    with serving(PostgresServer, "the SQLStore tests on PostgreSQL") as server:
        yield server


@pytest.fixture(params=sorted([*STORE_FACTORIES, *SERVER_STORE_FACTORIES]))
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store in turn, empty; the ones that hold connections are closed afterwards."""
    if request.param in SERVER_STORE_FACTORIES:
        fixture, make = SERVER_STORE_FACTORIES[request.param]
        store = make(request.getfixturevalue(fixture).url)
    else:
        store = await STORE_FACTORIES[request.param](tmp_path)
    yield store
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        await aclose()
