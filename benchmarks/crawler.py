"""A Crawlee crawler with and without `exactly_once`: pages per second, and migration latency.

Each measurement runs a real Actor (the Apify SDK, local storage, a fresh storage directory)
in a child process, crawling the example Actor's graph-shaped shop (``tests/graph_shop.py``)
served on 127.0.0.1 by this process. The handler is the usual one: enqueue the links, push
the product.

- **Throughput**: the same `BeautifulSoupCrawler` (10 requests in flight) crawls the whole shop
  with ``crawler.run`` and with ``exactly_once(crawler).run``; the child reports requests
  finished over the wall time of the run. Rounds alternate the two (the order flips each
  round), so both see the same machine; the figure is the ratio of the medians.
- **Migration latency**: ``exactly_once`` on a shop whose product pages take 200 ms, so that
  10 requests are always in flight; after a seeded moment the parent sends ``migrating``
  through the events stand-in and notes the machine-wide monotonic clock. The child notes, on
  the same clock, when its run has committed what was in flight and parked (the job's log
  line). The figure is that span, median and worst.

Run: ``python benchmarks/crawler.py [--rounds 5] [--trials 10]`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after benchmarks/: its fleet.py is not the tests'

from graph_shop import Shop  # type: ignore[import-not-found]  # noqa: E402 - a test helper

from resumable.testing import PlatformEvents  # noqa: E402 - after making the package importable

CONCURRENCY = 10
PARKED = "waiting for the platform to stop this process"


async def child(mode: str, url: str) -> None:
    """Crawl *url* in an Actor; print the figures as one JSON line."""
    from apify import Actor  # noqa: PLC0415 - only the child needs the SDK
    from crawlee import ConcurrencySettings  # noqa: PLC0415
    from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext  # noqa: PLC0415

    from resumable.crawlee import exactly_once  # noqa: PLC0415
    from resumable.testing import use_stand_in  # noqa: PLC0415

    class Parked(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if PARKED in record.getMessage():
                print(json.dumps({"parked": time.monotonic()}), flush=True)

    ours = logging.getLogger("resumable")
    ours.addHandler(Parked())
    ours.setLevel(logging.INFO)
    use_stand_in()
    async with Actor:
        crawler = BeautifulSoupCrawler(
            parser="html.parser",
            concurrency_settings=ConcurrencySettings(
                min_concurrency=CONCURRENCY,
                desired_concurrency=CONCURRENCY,
                max_concurrency=CONCURRENCY,
            ),
            configure_logging=False,
        )

        @crawler.router.default_handler
        async def handle(context: BeautifulSoupCrawlingContext) -> None:
            await context.enqueue_links(selector="a.product, a.next, a.list")
            if "/product/" in context.request.url:
                await context.push_data({"url": context.request.url})

        start = time.perf_counter()
        if mode == "plain":
            stats = await crawler.run([f"{url}/list/0"])
        else:
            stats = await exactly_once(crawler, key="bench").run([f"{url}/list/0"])
        took = time.perf_counter() - start
        print(json.dumps({"requests": stats.requests_finished, "seconds": took}), flush=True)


async def spawn(mode: str, url: str, platform: PlatformEvents, storage: Path) -> Any:
    env = os.environ | platform.env(storage, at_home=False) | {"PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        *(sys.executable, __file__, "--child", mode, url),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def figures(process: Any) -> dict[str, float]:
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the child ended without its figures")
    found: dict[str, float] = json.loads(line)
    return found


async def throughput(rounds: int) -> dict[str, list[float]]:
    """Pages per second of each mode, one figure a round."""
    rates: dict[str, list[float]] = {"plain": [], "exactly-once": []}
    with Shop(pages=40, per_page=10) as site, tempfile.TemporaryDirectory() as folder:
        site.start()
        async with PlatformEvents() as platform:
            for n in range(rounds):
                order = ["plain", "exactly-once"] if n % 2 == 0 else ["exactly-once", "plain"]
                for mode in order:
                    process = await spawn(mode, site.url, platform, Path(folder) / f"{mode}{n}")
                    got = await figures(process)
                    await process.wait()
                    rates[mode].append(got["requests"] / got["seconds"])
    return rates


async def migration(trials: int, seed: int) -> list[float]:
    """Seconds from ``migrating`` to the run having committed what was in flight, a trial each."""
    rng = random.Random(seed)
    spans = []
    with Shop(pages=40, per_page=10, delay=0.2) as site, tempfile.TemporaryDirectory() as folder:
        site.start()
        async with PlatformEvents() as platform:
            for n in range(trials):
                process = await spawn("exactly-once", site.url, platform, Path(folder) / f"t{n}")
                await platform.connected(timeout=60, count=n + 1)
                await asyncio.sleep(2.0 + rng.random())  # the crawl is under way, 10 in flight
                sent = time.monotonic()
                await platform.send("migrating", {"timeRemainingSecs": 30})
                got = await figures(process)
                spans.append(got["parked"] - sent)
                process.send_signal(signal.SIGKILL)
                await process.wait()
    return spans


def run(rounds: int, trials: int, seed: int = 1) -> dict[str, Any]:
    """Both measurements: each mode's pages per second a round, and each trial's span."""
    return {
        "rates": asyncio.run(throughput(rounds)),
        "spans": asyncio.run(migration(trials, seed)),
    }


def table(results: dict[str, Any]) -> str:
    """The report's tables: throughput with its ratio, and the migration's median and worst."""
    rates, spans = results["rates"], results["spans"]
    plain, once = (statistics.median(rates[mode]) for mode in ("plain", "exactly-once"))
    throughput_about = (
        "Pages per second, the same crawler (10 in flight, local storage), medians of "
        f"{len(rates['plain'])} alternating rounds:"
    )
    migration_about = (
        "`migrating` to committed and parked, 10 requests in flight (200 ms pages), "
        f"{len(spans)} trials:"
    )
    return "\n".join(
        [
            throughput_about,
            "",
            "| crawler.run | exactly_once(crawler).run | ratio |",
            "| ---: | ---: | ---: |",
            f"| {plain:.0f} | {once:.0f} | {once / plain:.2f}x |",
            "",
            migration_about,
            "",
            "| median | worst |",
            "| ---: | ---: |",
            f"| {statistics.median(spans) * 1000:.0f} ms | {max(spans) * 1000:.0f} ms |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "URL"))
    options = parser.parse_args()
    if options.child:
        asyncio.run(child(*options.child))
        return
    print(table(run(options.rounds, options.trials, options.seed)))


if __name__ == "__main__":
    main()
