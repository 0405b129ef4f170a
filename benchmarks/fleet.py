"""Fleet throughput: items per second of 1, 2, 4 and 8 worker processes on one shared store.

Each worker is a process of its own (this script with ``--worker``) that runs its share of
the shards one after the other: a ``@resumable`` job per shard, one key each, that does
``--work`` seconds of waiting per item (an API call, a query: time that is not CPU) and saves
every 10 items. The workers start, connect and report ready before the clock
starts, so process start-up (importing the store's client library) is not counted. Subjects:
``RedisStore`` and ``SQLStore`` on PostgreSQL, on a ``redis-server`` and a PostgreSQL
cluster that the script starts on free 127.0.0.1 ports, durable as configured by default.

Printed per store and number of workers: items per second, the speed-up over one worker,
and how many cores the workers kept busy (their CPU time over the wall time), which shows
what bounds the fleet on a small machine.

Run: ``python benchmarks/fleet.py [--shards 16] [--items 200] [--work 0.002] [--workers
1,2,4,8]`` in an
environment with ``pip install -e '.[tests]'`` (or ``.[bench]``), on a machine with
``redis-server`` and PostgreSQL's ``initdb``/``postgres``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resumable import Store, resumable  # noqa: E402
from resumable.redis import RedisStore  # noqa: E402
from resumable.sql import SQLStore  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402

WORKERS = "1,2,4,8"
SHARDS = 16
ITEMS = 200
WORK = 0.002
EVERY = 10


def open_store(spec: dict[str, str]) -> Store:
    """The store a spec names."""
    if spec["kind"] == "redis":
        return RedisStore(spec["url"], prefix=spec["prefix"])
    return SQLStore(spec["url"], table=spec["table"])


async def work_shards(spec: dict[str, Any]) -> tuple[int, float]:
    """The worker's side: connect, say ready, wait for go, run the shards.

    Returns:
        The items done, and the CPU seconds this process spent on them.
    """
    store = open_store(spec["store"])
    work, items = float(spec["work"]), int(spec["items"])

    @resumable(key=lambda shard: f"fleet-{shard}", store=store, every=spec["every"], triggers=[])
    async def shard_job(shard: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for item in range(cursor, items):
            await asyncio.sleep(work)
            yield item + 1

    await store.open()  # type: ignore[attr-defined]  # RedisStore and SQLStore have it
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    cpu = time.process_time()
    done = 0
    for shard in spec["shards"]:
        done += (await shard_job(shard)).yields
    cpu = time.process_time() - cpu
    await store.aclose()  # type: ignore[attr-defined]
    return done, cpu


def machine_busy() -> tuple[float, float]:
    """Seconds since boot that all the cores together spent busy, and in all (``/proc/stat``)."""
    with contextlib.suppress(OSError):
        fields = [float(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        ticks = os.sysconf("SC_CLK_TCK")
        return (sum(fields) - idle) / ticks, sum(fields) / ticks
    return 0.0, 0.0


def measure(store: dict[str, str], workers: int, plan: dict[str, Any]) -> dict[str, float]:
    """Run the plan's shards over *workers* processes; items/s and the cores they kept busy."""
    shards = [f"{uuid.uuid4().hex[:8]}-{s}" for s in range(plan["shards"])]
    specs = [{**plan, "store": store, "shards": shards[w::workers]} for w in range(workers)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    busy_before, _ = machine_busy()
    began = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    done, cpu = 0, 0.0
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"a worker failed: {out}"
        items, seconds = out.split()[-2:]
        done, cpu = done + int(items), cpu + float(seconds)
    elapsed = time.perf_counter() - began
    busy = (machine_busy()[0] - busy_before) / elapsed
    expected = plan["shards"] * plan["items"]
    assert done == expected, f"{done} items done of {expected}"
    return {"items_per_s": done / elapsed, "cores": cpu / elapsed, "machine": busy}


def stores(stack: ExitStack) -> Iterator[tuple[str, dict[str, str]]]:
    """The subjects, each on a server started here."""
    redis_server = RedisServer()
    stack.callback(redis_server.stop)
    yield "RedisStore", {"kind": "redis", "url": redis_server.url, "prefix": "bench:"}
    postgres = PostgresServer(durable=True)
    stack.callback(postgres.stop)
    yield "SQLStore (PostgreSQL)", {"kind": "sql", "url": postgres.url, "table": "fleet_bench"}


def run(
    shards: int = SHARDS, items: int = ITEMS, work: float = WORK, workers: str = WORKERS
) -> dict[str, Any]:
    """Measure every store at every fleet size (*workers*: comma-separated sizes).

    Returns:
        The plan (``shards``, ``items``, ``work``, ``every``, ``cpus``) and, per store and
        fleet size, ``items_per_s``, ``cores`` (the workers' CPU over the wall time) and
        ``machine`` (every core's busy time over it).
    """
    plan: dict[str, Any] = {"shards": shards, "items": items, "work": work, "every": EVERY}
    results: dict[str, Any] = {**plan, "cpus": os.cpu_count(), "stores": {}}
    with ExitStack() as stack:
        for name, store in stores(stack):
            results["stores"][name] = {
                str(size): measure(store, size, plan) for size in map(int, workers.split(","))
            }
    return results


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table, with what bounds the fleet below it."""
    work = results["work"]
    lines = [
        (
            f"{results['shards']} shards x {results['items']} items, {work * 1000:g} ms of "
            f"waiting per item, a save every {results['every']} items, {results['cpus']} cores."
        ),
        "",
        "| store | workers | items/s | speed-up | cores busy: workers | machine |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, by_size in results["stores"].items():
        first = next(iter(by_size.values()))["items_per_s"]
        for size, figures in by_size.items():
            lines.append(
                f"| {name} | {size} | {figures['items_per_s']:,.0f} | "
                f"{figures['items_per_s'] / first:.1f}x | {figures['cores']:.2f} | "
                f"{figures['machine']:.2f} |"
            )
    lines += [
        "",
        (
            f"One worker waits {work * 1000:g} ms per item, so it does at most "
            f"{1 / work:,.0f} items/s. 'workers' is the CPU the workers spent over the wall "
            "time; 'machine' is every core's busy time over it (the workers, the store's "
            "server, and anything else the machine runs): near the number of cores, the "
            "machine is the bound, not the store."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """Measure every store at every fleet size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, default=SHARDS, help="shards (keys) in all")
    parser.add_argument("--items", type=int, default=ITEMS, help="items per shard")
    parser.add_argument("--work", type=float, default=WORK, help="seconds of waiting per item")
    parser.add_argument("--workers", default=WORKERS, help="fleet sizes, comma-separated")
    args = parser.parse_args()
    if args.worker:
        done, cpu = asyncio.run(work_shards(json.loads(args.worker)))
        print(done, cpu)
        return
    print(table(run(args.shards, args.items, args.work, args.workers)))


if __name__ == "__main__":
    main()
