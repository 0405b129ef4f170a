"""A real crawler in a real Actor process, SIGKILLed, migrated and aborted: exactly once.

The Actor (``tests/crawl_child.py``) crawls the graph shop (``tests/graph_shop.py``: each
product is linked from its listing and from three other products) with 10 requests in
flight, on the Actor's persisted request queue and local storage, with the platform's events
from the stand-in and pay-per-event charging on (``ACTOR_TEST_PAY_PER_EVENT``). The same
handler runs under `exactly_once` and, as the control, under ``crawler.run`` alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_shop import Shop
from helpers import wait_until

from resumable.crawlee._group import GROUP
from resumable.testing import PlatformEvents

# Each test starts eight Actor processes one after another (SDK and Crawlee imports each
# time): a minute on an idle machine, more beside other work. The timeout only stops a hang.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("crawl_child.py")
CONCURRENCY = 10


class Crawl:
    """One crawl's local storage, and the Actor processes that run it one after another."""

    def __init__(self, platform: PlatformEvents, site: Shop, folder: Path, mode: str) -> None:
        self.platform = platform
        self.site = site
        self.folder = folder
        self.storage = folder / "storage"
        self.mode = mode
        self.runs = 0
        self.env = os.environ | platform.env(self.storage, at_home=False)
        self.env |= {
            "ACTOR_TEST_PAY_PER_EVENT": "true",
            "CRAWL_CONCURRENCY": str(CONCURRENCY),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }

    async def start(self) -> asyncio.subprocess.Process:
        """Start the next run and wait until its SDK has connected to the events stand-in."""
        self.runs += 1
        with (self.folder / f"run{self.runs}.log").open("wb") as log:
            child = await asyncio.create_subprocess_exec(
                *(sys.executable, str(CHILD), self.mode, self.site.url),
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        await self.platform.connected(timeout=60, count=self.runs)
        return child

    def log(self) -> str:
        """What the latest run printed."""
        return (self.folder / f"run{self.runs}.log").read_text(errors="replace")

    def products(self) -> list[int]:
        """The products in the default dataset, in its order."""
        files = sorted((self.storage / "datasets" / "default").glob("0*.json"))
        return [json.loads(f.read_text())["product"] for f in files]

    def charges(self) -> list[dict[str, Any]]:
        """The ``product`` charges in the SDK's charging log."""
        files = sorted((self.storage / "datasets" / "charging-log").glob("0*.json"))
        logged = [json.loads(f.read_text()) for f in files]
        return [entry for entry in logged if entry["event_name"] == "product"]

    def journal(self) -> dict[str, Any]:
        """The journal's record, as the Actor's key-value store holds it (empty: none yet)."""
        path = self.storage / "key_value_stores" / "default" / "shop"
        record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return record


@pytest.fixture
async def platform() -> AsyncIterator[PlatformEvents]:
    async with PlatformEvents() as events:
        yield events


@pytest.fixture
def site() -> Iterator[Shop]:
    with Shop(pages=30, per_page=10, delay=0.01) as shop:
        yield shop.start()


async def kill_at_random(crawl: Crawl, rng: random.Random, kills: int) -> list[int]:
    """Kill a run *kills* times: each after a seeded number of new products and a seeded
    extra moment. Returns how many products the dataset held at each kill."""
    counts = []
    for _ in range(kills):
        child = await crawl.start()
        await more_products(crawl, child, rng.randint(0, 25))
        await asyncio.sleep(rng.random() * 0.02)  # a seeded moment, not a wait for anything
        child.send_signal(signal.SIGKILL)
        await child.wait()
        counts.append(len(crawl.products()))
        held = crawl.journal().get("cursor", {}).get("requests", [])
        print(f"journal at a kill: {len(held)} request(s) committed and not yet marked")
        assert len(held) <= 2 * GROUP  # a group landed, the one after it landing
    return counts


async def more_products(crawl: Crawl, child: asyncio.subprocess.Process, count: int) -> None:
    """Wait until the run has delivered *count* more products (so its job runs)."""
    target = len(crawl.products()) + count
    await wait_until(lambda: len(crawl.products()) >= target or child.returncode is not None, 60)
    assert child.returncode is None, "the crawl ended before the test could stop it"


async def run_to_the_end(crawl: Crawl) -> None:
    child = await crawl.start()
    async with asyncio.timeout(120):
        code = await child.wait()
    assert 0 == code, crawl.log()[-3000:]


@pytest.mark.soak
@pytest.mark.parametrize("seed", [7, 31])
async def test_killed_migrated_and_aborted_the_crawl_holds_each_product_once(
    platform: PlatformEvents, site: Shop, tmp_path: Path, seed: int
) -> None:
    """SIGKILLed at seeded moments, then migrated and killed while parked, then aborted, then
    run to its end: the dataset holds every product once, the charging log one ``product``
    charge per product (each under its own idempotency key), the journal stays within the
    requests in flight, and after the crawl it holds nothing but its counts."""
    rng = random.Random(seed)
    crawl = Crawl(platform, site, tmp_path, "exactly-once")

    await kill_at_random(crawl, rng, kills=5)

    child = await crawl.start()
    await more_products(crawl, child, rng.randint(5, 30))
    await platform.send("migrating", {"timeRemainingSecs": 20})
    await wait_until(lambda: "waiting for the platform to stop" in crawl.log(), 30)
    child.send_signal(signal.SIGKILL)
    await child.wait()

    child = await crawl.start()
    await more_products(crawl, child, rng.randint(5, 30))
    await platform.send("aborting")
    async with asyncio.timeout(30):
        aborted = await child.wait()
    aborted_log = crawl.log()

    await run_to_the_end(crawl)

    products = Counter(crawl.products())
    charges = crawl.charges()
    keys = Counter(entry["idempotency_key"] for entry in charges)
    journal = crawl.journal()
    size = len(json.dumps(journal))

    assert 0 == aborted
    assert "OUTCOME aborted" in aborted_log
    assert {} == {product: n for product, n in products.items() if n != 1}
    assert set(range(site.products)) == set(products)
    assert site.products == sum(entry["charged_count"] for entry in charges)
    assert site.products == len(keys)
    assert {1} == set(keys.values())
    assert ([], []) == (journal["cursor"]["requests"], journal["cursor"]["datasets"][0]["pending"])
    assert size < 1024


@pytest.mark.soak
async def test_plain_crawlee_killed_at_the_same_moments_charges_twice(
    platform: PlatformEvents, site: Shop, tmp_path: Path
) -> None:
    """The control: the same handler run by ``crawler.run`` alone, killed as the soak kills it,
    charges products more than once (charges made in a handler whose request is handled again)
    and may push some twice: the figures are printed."""
    crawl = Crawl(platform, site, tmp_path, "plain")

    await kill_at_random(crawl, random.Random(7), kills=4)
    await run_to_the_end(crawl)

    products = Counter(crawl.products())
    charged = sum(entry["charged_count"] for entry in crawl.charges())
    print(
        f"plain Crawlee after 4 kills: {sum(products.values())} items for {len(products)} "
        f"products, {charged} product charges for {site.products} products"
    )

    assert set(range(site.products)) == set(products)
    assert charged > site.products


async def test_max_requests_per_crawl_holds_across_kills(
    platform: PlatformEvents, site: Shop, tmp_path: Path
) -> None:
    """``max_requests_per_crawl=40``, killed twice on the way: the runs together finish at
    most 40 requests plus those in flight when the limit was reached, because each run's
    statistics start from the journal's count."""
    crawl = Crawl(platform, site, tmp_path, "exactly-once")
    crawl.env["CRAWL_MAX_REQUESTS"] = "40"
    crawl.env["CRAWL_CONCURRENCY"] = "4"

    for _ in range(2):
        child = await crawl.start()
        await more_products(crawl, child, 10)
        child.send_signal(signal.SIGKILL)
        await child.wait()
    await run_to_the_end(crawl)

    finished = crawl.journal()["cursor"]["finished"]

    assert 40 <= finished <= 40 + 4 - 1
    assert len(crawl.products()) <= finished
    assert len(set(crawl.products())) == len(crawl.products())
