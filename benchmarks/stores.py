"""Save and load latency of every store that can hold many jobs' state, side by side.

Subjects: ``RedisStore``, ``SQLStore`` on PostgreSQL and on SQLite, ``ApifyStore`` over
Crawlee's Redis and SQL (SQLite, and PostgreSQL when Crawlee takes it) storage clients, and
``FileStore``. The script starts its own ``redis-server`` (with RedisJSON, which Crawlee's
Redis client needs) and PostgreSQL cluster on free 127.0.0.1 ports, durable as configured
by default (fsync on), and runs everything in one process.

A save is ``store.save(key, record, guard=...)`` with the guard the engine passes (parse the
current record, compare its owner): the fenced write every checkpoint makes. A load is
``store.load(key)``. Operations alternate between the subjects (one save on each, then one
load on each, and so on), so a hiccup of the machine touches them all alike. Figures are
milliseconds per operation: the median, the 99th percentile, and the median as a multiple
of ``FileStore``'s.

Run: ``python benchmarks/stores.py [--operations N]`` in an environment with
``pip install -e '.[bench]'`` (or ``.[tests]``), on a machine with ``redis-server`` and
PostgreSQL's ``initdb``/``postgres``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawlee.configuration import Configuration  # noqa: E402
from crawlee.storage_clients import RedisStorageClient, SqlStorageClient  # noqa: E402
from crawlee.storages import KeyValueStore  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from resumable import FileStore, Store  # noqa: E402
from resumable.apify import ApifyStore  # noqa: E402
from resumable.redis import RedisStore  # noqa: E402
from resumable.sql import SQLStore  # noqa: E402
from tests.servers import PostgresServer, RedisServer, redisjson_module  # noqa: E402

OPERATIONS = 500
OWNER = "bench-host:4242:0a1b2c3d"


def record(seq: int) -> bytes:
    """A record as the engine writes it: a small JSON envelope around an int cursor."""
    return json.dumps(
        {
            "resumable": 1,
            "key": "bench",
            "version": 1,
            "status": "running",
            "seq": seq,
            "owner": OWNER,
            "updated_at": datetime.now(UTC).isoformat(),
            "cursor": seq * 100,
        },
        separators=(",", ":"),
    ).encode()


def guard(current: bytes | None) -> None:
    """The engine's check before a write: the record is still ours."""
    if current is not None and json.loads(current)["owner"] != OWNER:
        raise RuntimeError("taken over")


@contextlib.asynccontextmanager
async def subjects(
    directory: Path, redis_url: str, postgres_url: str
) -> AsyncIterator[dict[str, Store]]:
    """Every store under test, opened, and closed afterwards."""
    closers: list[Callable[[], Awaitable[object]]] = []
    no_purge = Configuration(purge_on_start=False)

    async def crawlee(client: RedisStorageClient | SqlStorageClient) -> ApifyStore:
        kvs = await KeyValueStore.open(
            name=f"bench-{uuid.uuid4().hex[:8]}", configuration=no_purge, storage_client=client
        )
        return ApifyStore(kvs)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is experimental", UserWarning)
        crawlee_redis = RedisStorageClient(connection_string=redis_url)
        crawlee_sqlite = SqlStorageClient(
            engine=create_async_engine(f"sqlite+aiosqlite:///{directory / 'crawlee.sqlite'}")
        )
        crawlee_postgres = SqlStorageClient(engine=create_async_engine(postgres_url))
    # Crawlee's Redis client has no public close; its connection is closed directly.
    closers += [crawlee_redis._redis.aclose, crawlee_sqlite.close, crawlee_postgres.close]
    redis_store = RedisStore(redis_url, prefix="bench:")
    postgres_store = SQLStore(postgres_url, table="bench_state")
    sqlite_store = SQLStore(f"sqlite+aiosqlite:///{directory / 'state.sqlite'}")
    closers += [redis_store.aclose, postgres_store.aclose, sqlite_store.aclose]
    try:
        stores: dict[str, Store] = {
            "RedisStore": redis_store,
            "SQLStore (PostgreSQL)": postgres_store,
            "SQLStore (SQLite)": sqlite_store,
            "ApifyStore / Crawlee Redis": await crawlee(crawlee_redis),
            "ApifyStore / Crawlee SQL (SQLite)": await crawlee(crawlee_sqlite),
            "ApifyStore / Crawlee SQL (PostgreSQL)": await crawlee(crawlee_postgres),
            "FileStore": FileStore(directory / "files"),
        }
        yield stores
    finally:
        for close in closers:
            await close()


async def measure(stores: dict[str, Store], operations: int) -> dict[str, dict[str, list[float]]]:
    """Alternate saves and loads over the stores; return the seconds each one took."""
    times: dict[str, dict[str, list[float]]] = {name: {"save": [], "load": []} for name in stores}
    for store in stores.values():  # a first save makes the key, the table, the file
        await store.save("bench", record(0), guard=guard)
    for seq in range(1, operations + 1):
        data = record(seq)
        for name, store in stores.items():
            start = time.perf_counter()
            await store.save("bench", data, guard=guard)
            times[name]["save"].append(time.perf_counter() - start)
        for name, store in stores.items():
            start = time.perf_counter()
            loaded = await store.load("bench")
            times[name]["load"].append(time.perf_counter() - start)
            assert loaded == data, f"{name} gave back another record"
    return times


def summarize(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Each store's median and 99th percentile save and load, in milliseconds."""
    return {
        name: {
            f"{op}_ms_{figure}": value * 1000
            for op in ("save", "load")
            for figure, value in (
                ("median", statistics.median(times[name][op])),
                ("p99", statistics.quantiles(times[name][op], n=100)[98]),
            )
        }
        for name in times
    }


def table(results: dict[str, dict[str, float]]) -> str:
    """The markdown table of medians, 99th percentiles and ratios to FileStore (ms)."""
    base = results["FileStore"]
    lines = [
        (
            "| store | save median | save p99 | save / FileStore | load median | load p99 "
            "| load / FileStore |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        cells = [name]
        for op in ("save", "load"):
            median = r[f"{op}_ms_median"]
            cells += [
                f"{median:.2f} ms",
                f"{r[f'{op}_ms_p99']:.2f} ms",
                f"{median / base[f'{op}_ms_median']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def _run(operations: int, redis_url: str, postgres_url: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="resumable-bench-") as directory:
        async with subjects(Path(directory), redis_url, postgres_url) as stores:
            return summarize(await measure(stores, operations))


def run(operations: int = OPERATIONS) -> dict[str, dict[str, float]]:
    """Start the servers, measure *operations* saves and loads on every store, stop them."""
    logging.getLogger("crawlee").setLevel(logging.ERROR)  # "metadata missing" on a fresh store
    module = redisjson_module()
    redis = RedisServer(modules=[module] if module else [])
    try:
        postgres = PostgresServer(durable=True)
        try:
            return asyncio.run(_run(operations, redis.url, postgres.url))
        finally:
            postgres.stop()
    finally:
        redis.stop()


def main() -> None:
    """Run with the command line's number of operations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--operations", type=int, default=OPERATIONS, help="saves per store")
    args = parser.parse_args()
    print(table(run(args.operations)))


if __name__ == "__main__":
    main()
