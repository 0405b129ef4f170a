"""What `PreemptionNotice` costs off a cloud, and how fast a notice becomes a durable cursor.

Start-up cost off a cloud: the time from a job's triggers being attached to the job's first
cursor reaching the caller (``async for``), for the same job with and without
``PreemptionNotice``, trials alternating and side by side in one process. "Off a cloud" is
played on 127.0.0.1 (this benchmark touches no other address) in two ways: every endpoint
refuses the connection (a closed port), or every endpoint drops connection attempts (a
`BlackHole`, as 169.254.169.254 often does off a cloud). Two jobs, on a `MemoryStore`: one
that only yields (1000 cursors, ``asyncio.sleep(0)`` each: the worst case, as the probes
then compete with the job for the event loop) and one whose items wait 1 ms on I/O (50
cursors: the probes run while it waits); their whole run times are compared too.

Notice to durable: for each provider's stand-in, a job with a `FileStore` works (1 ms an
item) until the trigger is watching; then the stand-in announces a preemption at a random
moment between two polls, and the time is taken until the aborted record has been written
and fsynced. The trigger polls at each provider's own cadence (AWS every 5 s, Azure every
second, Google Cloud long-polled) unless ``--poll-interval`` says otherwise, so the figure
includes the wait for the next poll; "heard" is the time from the stand-in's answer that
carried the notice to the durable record, next to what one `FileStore` write takes alone.
The stand-in runs in the job's event loop.

Run: ``python benchmarks/preemption.py [--trials 20] [--startup-trials 200]
[--poll-interval SECONDS]`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measuring import rounds  # noqa: E402 - beside this file

from resumable import FileStore, Guard, MemoryStore, resumable  # noqa: E402
from resumable._controls import Controls  # noqa: E402
from resumable._triggers import Detach, Trigger  # noqa: E402
from resumable.cloud import PreemptionNotice  # noqa: E402
from resumable.testing import (  # noqa: E402
    AwsMetadata,
    AzureMetadata,
    BlackHole,
    GcpMetadata,
    MetadataServer,
)

TRIALS = 20
STARTUP_TRIALS = 200
PROVIDERS = ("aws", "gcp", "azure")
CADENCE = {"aws": 5.0, "gcp": 0.05, "azure": 1.0}
"""Seconds between the trigger's polls (Google Cloud is long-polled: any short spread)."""
STAND_INS: dict[str, Callable[[], MetadataServer]] = {
    "aws": AwsMetadata,
    "gcp": GcpMetadata,
    "azure": AzureMetadata,
}


class Mark:
    """A trigger that only notes when the job's triggers are attached (it comes first)."""

    def __init__(self) -> None:
        self.at = 0.0

    def attach(self, controls: Controls) -> Detach:
        self.at = time.perf_counter()
        return lambda: None


async def startup_trial(triggers: list[Trigger], mark: Mark, delay: float) -> tuple[float, float]:
    """Run one job (items of *delay* seconds); return (attach to first cursor, whole run)."""

    @resumable(key="startup", store=MemoryStore(), interval=None, triggers=[mark, *triggers])
    async def work(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, CURSORS_BY_WORKLOAD[delay]):
            await asyncio.sleep(delay)
            yield i + 1

    started = time.perf_counter()
    first = 0.0
    async for _ in work():
        if not first:
            first = time.perf_counter()
    return first - mark.at, time.perf_counter() - started


def closed_ports() -> dict[str, str]:
    """An endpoint per provider on 127.0.0.1 ports that refuse connections."""
    endpoints = {}
    for name in PROVIDERS:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            endpoints[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return endpoints


@contextmanager
def black_holes() -> Iterator[dict[str, str]]:
    """An endpoint per provider on 127.0.0.1 ports that drop connection attempts."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(BlackHole()).url for name in PROVIDERS}


def _with_notice(endpoints: dict[str, str]) -> Callable[[], list[Trigger]]:
    return lambda: [PreemptionNotice(endpoints=endpoints)]


WORKLOADS = {"sleep(0)": 0.0, "1 ms I/O": 0.001}
"""Per item: a job that only yields, and one whose items wait on I/O for 1 ms."""
CURSORS_BY_WORKLOAD = {0.0: 1000, 0.001: 50}


async def startup(trials: int) -> list[dict[str, Any]]:
    """Off-cloud cost of the trigger, side by side with none: one row per workload and way."""
    rows = []
    with black_holes() as holes:
        for workload, delay in WORKLOADS.items():
            for label, endpoints in (("refused", closed_ports()), ("dropped", holes)):
                subjects: dict[str, Callable[[], list[Trigger]]] = {
                    "without": list,
                    "with": _with_notice(endpoints),
                }
                firsts: dict[str, list[float]] = {name: [] for name in subjects}
                runs: dict[str, list[float]] = {name: [] for name in subjects}
                for _, name in rounds(list(subjects), trials, warm_up=False):
                    first, whole = await startup_trial(subjects[name](), Mark(), delay)
                    firsts[name].append(first)
                    runs[name].append(whole)
                rows.append(
                    {
                        "items": workload,
                        "endpoints": label,
                        "first_us": {n: statistics.median(v) * 1e6 for n, v in firsts.items()},
                        "first_us_p90_with": statistics.quantiles(firsts["with"], n=10)[-1] * 1e6,
                        "run_ms": {n: statistics.median(v) * 1e3 for n, v in runs.items()},
                    }
                )
    return rows


def startup_table(rows: list[dict[str, Any]]) -> str:
    """The start-up rows as a markdown table."""
    lines = [
        (
            "| items | endpoints | first cursor without / with (µs, median) | extra | p90 with "
            "| run without / with (ms, median) | run ratio |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        a, b = r["first_us"]["without"], r["first_us"]["with"]
        c, d = r["run_ms"]["without"], r["run_ms"]["with"]
        lines.append(
            f"| {r['items']} | {r['endpoints']} | {a:.0f} / {b:.0f} | {b - a:+.0f} "
            f"| {r['first_us_p90_with']:.0f} | {c:.1f} / {d:.1f} | {d / c:.3f} |"
        )
    return "\n".join(lines)


class DurableStore(FileStore):
    """A FileStore that notes when the aborted record has been written and fsynced."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.durable = 0.0

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        await super().save(key, data, guard=guard)
        if b'"aborted"' in data and not self.durable:
            self.durable = time.perf_counter()


def record_answers(cloud: MetadataServer) -> list[tuple[float, str, str, int]]:
    """Note ``(time, method, path, status)`` of every answer *cloud* gives from now on."""
    answers: list[tuple[float, str, str, int]] = []
    original = cloud.respond

    async def respond(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        reply = await original(method, target, headers, body)
        answers.append((time.perf_counter(), method, target.split("?", maxsplit=1)[0], reply[0]))
        return reply

    cloud.respond = respond  # type: ignore[method-assign]
    return answers


async def latency_trial(
    provider: str, poll_interval: float | None, workdir: Path
) -> tuple[float, float]:
    """One notice on a fresh stand-in; return (announced to durable, heard to durable)."""
    async with STAND_INS[provider]() as cloud:
        answers = record_answers(cloud)
        store = DurableStore(workdir)
        notice = PreemptionNotice(endpoints={provider: cloud.url}, poll_interval=poll_interval)

        @resumable(key="spot", store=store, interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            for i in range(cursor, 10**9):
                await asyncio.sleep(0.001)
                yield i + 1

        run = asyncio.ensure_future(work())
        await cloud.watched(timeout=30)
        # Announce at a random moment between two polls, as a real notice would come.
        cadence = poll_interval or CADENCE[provider]
        await asyncio.sleep(random.uniform(0.0, cadence))
        announced = time.perf_counter()
        cloud.preempt(in_seconds=30)
        outcome = await asyncio.wait_for(run, timeout=60)
        assert outcome.status == "aborted", outcome
        heard = min(
            at
            for at, method, path, status in answers
            if at >= announced and method == "GET" and path == cloud.watch_path and status == 200
        )
        if isinstance(cloud, AzureMetadata):  # let the approval finish before closing
            approval = ("POST", cloud.watch_path, 200)
            await cloud.wait_for(lambda: approval in cloud.requests)
        return store.durable - announced, store.durable - heard


async def latency(trials: int, poll_interval: float | None) -> dict[str, Any]:
    """Notice to durable per provider, and one `FileStore` write alone, in milliseconds."""
    by_provider: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for provider in PROVIDERS:
            results = [
                await latency_trial(provider, poll_interval, Path(tmp) / f"{provider}{trial}")
                for trial in range(trials)
            ]
            total = [r[0] * 1e3 for r in results]
            heard = [r[1] * 1e3 for r in results]
            by_provider[provider] = {
                "announced_ms_median": statistics.median(total),
                "announced_ms_worst": max(total),
                "heard_ms_median": statistics.median(heard),
                "heard_ms_worst": max(heard),
            }
        alone = [await plain_save(Path(tmp) / f"alone{trial}") * 1e3 for trial in range(trials)]
    return {
        "trials": trials,
        "poll_interval": poll_interval,
        "providers": by_provider,
        "save_alone_ms_median": statistics.median(alone),
        "save_alone_ms_worst": max(alone),
    }


def latency_table(results: dict[str, Any]) -> str:
    """The notice-to-durable figures as a markdown table, one row per provider."""
    lines = [
        "| stand-in | announced → durable, median | worst | heard → durable, median | worst |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for provider, r in results["providers"].items():
        lines.append(
            f"| {provider} | {r['announced_ms_median']:.1f} | {r['announced_ms_worst']:.1f} | "
            f"{r['heard_ms_median']:.1f} | {r['heard_ms_worst']:.1f} |"
        )
    lines.append(
        f"| (one `FileStore` save alone) | | | {results['save_alone_ms_median']:.1f} | "
        f"{results['save_alone_ms_worst']:.1f} |"
    )
    return "\n".join(lines)


def cadence(results: dict[str, Any]) -> str:
    """How often the trigger polled, in words."""
    interval = results["poll_interval"]
    return "at each provider's own cadence" if interval is None else f"every {interval:g} s"


async def plain_save(directory: Path) -> float:
    """Seconds one small `FileStore` write takes in a fresh directory: the floor of the above."""
    store = FileStore(directory)
    started = time.perf_counter()
    await store.save("spot", b'{"cursor": 1}')
    return time.perf_counter() - started


async def measure(
    trials: int, startup_trials: int, poll_interval: float | None, sections: set[str]
) -> dict[str, Any]:
    """Run the chosen *sections* (``startup``, ``latency``); return their figures."""
    results: dict[str, Any] = {}
    if "startup" in sections:
        results["startup"] = await startup(startup_trials)
    if "latency" in sections:
        results["latency"] = await latency(trials, poll_interval)
    return results


def run(
    trials: int = TRIALS,
    startup_trials: int = STARTUP_TRIALS,
    poll_interval: float | None = None,
    sections: tuple[str, ...] = ("startup", "latency"),
) -> dict[str, Any]:
    """Measure the start-up cost (*startup_trials* jobs per subject) and notice to durable
    (*trials* notices per stand-in, polling every *poll_interval* s or at each provider's
    own cadence)."""
    return asyncio.run(measure(trials, startup_trials, poll_interval, set(sections)))


def table(results: dict[str, Any]) -> str:
    """Render *results* as markdown: a heading and a table per section that ran."""
    parts = []
    if "startup" in results:
        parts += [
            "Start-up off a cloud: attach to first cursor, and a whole run (1000 or 50 items):",
            "",
            startup_table(results["startup"]),
        ]
    if "latency" in results:
        r = results["latency"]
        parts += [
            *([""] if parts else []),
            (
                f"Notice to durable cursor (ms), {r['trials']} notices per stand-in, polling "
                f"{cadence(r)}:"
            ),
            "",
            latency_table(r),
        ]
    return "\n".join(parts)


def main() -> None:
    """Run with the command line's sizes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=TRIALS, help="notices per stand-in")
    parser.add_argument(
        "--startup-trials", type=int, default=STARTUP_TRIALS, help="jobs per subject"
    )
    parser.add_argument("--poll-interval", type=float, default=None, help="AWS/Azure polling")
    parser.add_argument("--only", default="startup,latency", help="sections to run")
    args = parser.parse_args()
    sections = tuple(args.only.split(","))
    print(table(run(args.trials, args.startup_trials, args.poll_interval, sections)))


if __name__ == "__main__":
    main()
