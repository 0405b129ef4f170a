"""How fast a migration makes the cursor durable, and how stale that cursor is.

Each trial starts a real Actor (the Apify SDK, "at home", local storage) in a child process
against the `PlatformEvents` stand-in, lets its job process items for a while, sends
``migrating`` and measures, on the machine-wide monotonic clock:

- latency: from sending the event to the save of the cursor having returned (on the direct
  path that means fsynced to the disk; on Crawlee's client, written but not fsynced);
- staleness: how many cursors the job had yielded beyond the saved one when the save
  returned (0: the latest one was saved).

Configurations: ApifyStore's direct file path against Crawlee's own client, for a job that
waits on I/O (10 ms per item), for a CPU-bound one (50 ms of pure Python per item), and for
an I/O-bound job sharing the event loop with a CPU-busy task (another part of the Actor
computing 50 ms at a time). A migration stops the job itself from taking more work, but
not its neighbours: every thread hop of Crawlee's client then waits behind them.

Run: ``python benchmarks/migration.py [--trials 20]`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resumable._platform import PlatformEvents  # noqa: E402 - after making the package importable

IO_JOB = {"cpu": 0.0, "delay": 0.01, "busy": 0.0}
CPU_JOB = {"cpu": 0.05, "delay": 0.0, "busy": 0.0}
BUSY_LOOP = {"cpu": 0.0, "delay": 0.01, "busy": 0.05}
CONFIGS: dict[str, dict[str, Any]] = {
    "direct, I/O-bound job": {"path": "direct", **IO_JOB},
    "Crawlee client, I/O-bound job": {"path": "crawlee", **IO_JOB},
    "direct, CPU-bound job (50 ms per item)": {"path": "direct", **CPU_JOB},
    "Crawlee client, CPU-bound job (50 ms per item)": {"path": "crawlee", **CPU_JOB},
    "direct, I/O job beside a CPU-busy task (50 ms steps)": {"path": "direct", **BUSY_LOOP},
    "Crawlee client, I/O job beside a CPU-busy task (50 ms steps)": {
        "path": "crawlee",
        **BUSY_LOOP,
    },
}
WARM_UP_ITEMS = 20


async def trial(
    platform: PlatformEvents, workdir: Path, config: dict[str, Any]
) -> dict[str, float]:
    """Run one Actor until it has done some work, migrate it, and measure the save."""
    yields_log = workdir / "yields.log"
    saves_log = workdir / "saves.log"
    env = os.environ | platform.env(workdir / "storage") | {"PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        "--path",
        config["path"],
        "--cpu",
        str(config["cpu"]),
        "--delay",
        str(config["delay"]),
        "--busy",
        str(config["busy"]),
        "--yields",
        str(yields_log),
        "--saves",
        str(saves_log),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await platform.connected(timeout=30, count=platform.connections + 1)
        await _until(lambda: len(_lines(yields_log)) >= WARM_UP_ITEMS, "warm-up")
        sent = time.monotonic()
        await platform.send("migrating", {"timeRemainingSecs": 30})
        await _until(lambda: any(t >= sent for t, _ in _lines(saves_log)), "migration save")
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    saved_at, cursor = next((t, c) for t, c in _lines(saves_log) if t >= sent)
    yielded = max(c for t, c in _lines(yields_log) if t <= saved_at)
    return {"latency_ms": (saved_at - sent) * 1000, "stale_by": yielded - cursor}


async def _until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.001)


def _lines(path: Path) -> list[tuple[float, int]]:
    if not path.exists():
        return []
    pairs = (line.split() for line in path.read_text().splitlines())
    return [(float(t), int(c)) for t, c in pairs]


async def measure(trials: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with PlatformEvents() as platform:
        for name, config in CONFIGS.items():
            samples = []
            for _ in range(trials):
                with tempfile.TemporaryDirectory(prefix="resumable-bench-") as tmp:
                    samples.append(await trial(platform, Path(tmp), config))
            latencies = [s["latency_ms"] for s in samples]
            stale = [s["stale_by"] for s in samples]
            results[name] = {
                "trials": trials,
                "latency_ms_median": statistics.median(latencies),
                "latency_ms_worst": max(latencies),
                "stale_by_median": statistics.median(stale),
                "stale_by_worst": max(stale),
            }
    return results


def run(trials: int = 20) -> dict[str, Any]:
    """Measure every configuration over *trials* migrations; return the figures by name."""
    return asyncio.run(measure(trials))


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table."""
    header = (
        "| configuration | trials | latency median (ms) | latency worst (ms) "
        "| stale by, median (cursors) | stale by, worst (cursors) |"
    )
    lines = [
        header,
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['trials']} | {r['latency_ms_median']:.1f} | "
            f"{r['latency_ms_worst']:.1f} | {r['stale_by_median']:g} | {r['stale_by_worst']:g} |"
        )
    return "\n".join(lines)


# -- the Actor each trial runs ------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    from apify import Actor  # noqa: PLC0415 - only the child needs the SDK loaded

    from resumable import resumable  # noqa: PLC0415
    from resumable._platform import use_stand_in  # noqa: PLC0415
    from resumable._stores import Guard  # noqa: PLC0415
    from resumable.apify import ApifyStore  # noqa: PLC0415

    yields = os.open(args.yields, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saves = os.open(args.saves, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    class TimedStore(ApifyStore):
        """Notes when each save returned, and what it saved."""

        async def open(self) -> Any:
            kvs = await super().open()
            if args.path == "crawlee":
                self._files = None
            return kvs

        async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
            await super().save(key, data, guard=guard)
            done = time.monotonic()
            os.write(saves, f"{done} {json.loads(data)['cursor']}\n".encode())

    async def busy_neighbour() -> None:
        """Another task of the Actor doing CPU work, as a crawler parsing pages does."""
        while True:
            spin_until = time.perf_counter() + args.busy
            while time.perf_counter() < spin_until:
                pass
            await asyncio.sleep(0)

    use_stand_in()
    async with Actor:
        neighbour = asyncio.create_task(busy_neighbour()) if args.busy else None

        @resumable(key="bench", store=TimedStore())
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            while True:
                if args.cpu:
                    spin_until = time.perf_counter() + args.cpu
                    while time.perf_counter() < spin_until:
                        pass
                await asyncio.sleep(args.delay)
                cursor += 1
                os.write(yields, f"{time.monotonic()} {cursor}\n".encode())
                yield cursor

        await work()
        if neighbour is not None:
            neighbour.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="direct", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.01, help=argparse.SUPPRESS)
    parser.add_argument("--busy", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--yields", help=argparse.SUPPRESS)
    parser.add_argument("--saves", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return
    print(table(run(args.trials)))


if __name__ == "__main__":
    main()
