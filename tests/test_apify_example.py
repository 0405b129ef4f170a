"""examples/apify_actor: the example crawler holds each product once, and charges it once.

The Actor runs unmodified, as ``python -m src`` in its folder (what ``apify run`` and its
image run), through the ``actor_process`` fixture that users test their own Actors with: a
real process with the real Apify SDK, its storages on the local disk, the platform's events
from the stand-in, and pay-per-event charging on (``ACTOR_TEST_PAY_PER_EVENT``, so the SDK
logs every charge to the ``charging-log`` dataset). It crawls a `GatedShop`, whose product
pages are served only as far as the test allows, so that each kill, migration and Ctrl-C
lands mid-crawl, at the point the test waited for.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_shop import GatedShop, product_of, stop_noticed

from resumable.testing import ActorProcess

pytestmark = pytest.mark.slow

ACTOR = Path(__file__).resolve().parent.parent / "examples" / "apify_actor"
PAGES = 15


@pytest.fixture
def shop() -> Iterator[GatedShop]:
    with GatedShop(pages=PAGES) as served:
        yield served.start()


@pytest.fixture
def crawler(actor_process: Callable[..., ActorProcess], shop: GatedShop) -> ActorProcess:
    """The example Actor over the shop, run locally with pay-per-event charging on."""
    return actor_process(
        "src",
        input={"startUrl": shop.start_url},
        cwd=ACTOR,
        at_home=False,
        env={"ACTOR_TEST_PAY_PER_EVENT": "true"},
    )


def products(actor: ActorProcess) -> Counter[int]:
    """How many times each product is in the default dataset."""
    return Counter(product_of(item["url"]) for item in actor.dataset())


def charges(actor: ActorProcess) -> list[dict[str, Any]]:
    """The ``product`` charges in the SDK's charging log."""
    return [entry for entry in actor.dataset("charging-log") if entry["event_name"] == "product"]


async def crawl_until(actor: ActorProcess, shop: GatedShop, more: int) -> None:
    """Let *more* product pages through, and wait until the dataset holds half of them more."""
    target = len(actor.dataset()) + more // 2
    shop.allow(more)
    await actor.until(lambda: len(actor.dataset()) >= target, what=f"{target} products pushed")


async def test_killed_and_migrated_mid_crawl_the_example_holds_each_product_once(
    crawler: ActorProcess, shop: GatedShop
) -> None:
    """SIGKILLed mid-crawl, then migrated and killed while parked, then run to its end: the
    dataset holds every product of the shop once, and the charging log one ``product``
    charge per product, each under an idempotency key of its own."""
    await crawler.start()
    await crawl_until(crawler, shop, 40)
    await crawler.kill()
    shop.cut()
    killed_at = len(crawler.dataset())

    await crawler.start()
    await crawl_until(crawler, shop, 40)
    await crawler.migrate(time_remaining=20)
    await crawler.until_logged("job 'shop': migrating")
    shop.allow()  # the requests in flight finish, and the crawler takes no new one
    await crawler.until_logged("waiting for the platform to stop this process")
    await crawler.kill()
    migrated_at = len(crawler.dataset())

    await crawler.start()
    code = await crawler.wait(120)
    counts = products(crawler)
    logged = charges(crawler)
    keys = Counter(entry["idempotency_key"] for entry in logged)

    assert 0 == code, crawler.log()[-3000:]
    assert 0 < killed_at < migrated_at < shop.products
    assert {} == {product: n for product, n in counts.items() if n != 1}
    assert set(range(shop.products)) == set(counts)
    assert shop.products == sum(entry["charged_count"] for entry in logged)
    assert shop.products == len(keys)
    assert {1} == set(keys.values())
    assert "Crawl completed (resumed from the journal)" in crawler.log()


async def test_ctrl_c_stops_the_example_mid_crawl_and_the_next_run_finishes_it(
    crawler: ActorProcess, shop: GatedShop
) -> None:
    """Interrupted with Ctrl-C (SIGINT) mid-crawl, the run ends "aborted" with exit code 0;
    the next run on the same storage crawls the rest: every product once, charged once."""
    await crawler.start()
    await crawl_until(crawler, shop, 40)

    crawler.send_signal(signal.SIGINT)
    await crawler.until(lambda: stop_noticed(crawler.log()), what="the Ctrl-C noticed")
    shop.allow()  # the requests in flight finish, and the crawler takes no new one
    code = await crawler.wait()
    stopped_at = len(crawler.dataset())

    assert 0 == code, crawler.log()[-3000:]
    assert "Crawl aborted (from the start)" in crawler.log()
    assert 0 < stopped_at < shop.products

    await crawler.start()
    code = await crawler.wait(120)
    counts = products(crawler)

    assert 0 == code, crawler.log()[-3000:]
    assert {} == {product: n for product, n in counts.items() if n != 1}
    assert set(range(shop.products)) == set(counts)
    assert shop.products == sum(entry["charged_count"] for entry in charges(crawler))
    assert "Crawl completed (resumed from the journal)" in crawler.log()
