"""The Actor: crawl a shop with Crawlee; each product reaches the dataset, and is charged, once.

An ordinary Crawlee crawler: a `BeautifulSoupCrawler` with 10 requests in flight on the
Actor's default request queue (persisted, so it survives a migration), and a handler
written for Crawlee alone that follows the links, pushes each product to the default
dataset and charges the pay-per-event event ``product`` for it. `exactly_once` runs it:
what a request's handler did is committed to a journal in the Actor's default key-value
store (record ``shop``) and then delivered, so a kill, a migration or an abort never
pushes a product twice or charges it twice, and never loses one.

The shop is the input's ``startUrl``; without one, the Actor serves a small shop of its
own on 127.0.0.1 (`Shop`) and crawls that, so ``apify run`` works offline.
"""

from __future__ import annotations

import contextlib
from typing import Any

from apify import Actor
from crawlee import ConcurrencySettings
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext

from resumable.apify import charge
from resumable.crawlee import exactly_once

from .shop import Shop

SHOP_PORT = "own-shop-port"
"""Where the Actor keeps the port its own shop is served on, in its default key-value store."""


async def main() -> None:
    """Run the Actor: crawl the shop, report how the crawl ended."""
    async with Actor:
        actor_input = await Actor.get_input() or {}
        concurrency = int(actor_input.get("maxConcurrency", 10))
        # Made inside `async with Actor:`, the crawler takes the Actor's storages: its
        # default request queue, dataset and key-value store.
        crawler = BeautifulSoupCrawler(
            parser="html.parser",
            concurrency_settings=ConcurrencySettings(
                desired_concurrency=concurrency, max_concurrency=concurrency
            ),
        )

        @crawler.router.default_handler
        async def handle(context: BeautifulSoupCrawlingContext) -> None:
            await context.enqueue_links(selector="a.product, a.next")
            if "/product/" in context.request.url:
                price = context.soup.select_one(".price")
                await context.push_data(
                    {
                        "url": context.request.url,
                        "name": context.soup.h1.get_text() if context.soup.h1 else None,
                        "price": int(price.get_text()) if price else None,
                    }
                )
                await charge("product")  # once per product, like its dataset item

        with contextlib.ExitStack() as served:
            start_url = actor_input.get("startUrl")
            if not start_url:
                shop = served.enter_context(await own_shop(actor_input))
                start_url = shop.start().start_url
            crawl = exactly_once(crawler, key="shop")
            stats = await crawl.run([start_url])
        outcome = crawl.outcome
        resumed = outcome is not None and outcome.resumed_from is not None
        Actor.log.info(
            f"Crawl {outcome.status if outcome else 'ended'} "
            f"({'resumed from the journal' if resumed else 'from the start'}): "
            f"{stats.requests_finished} requests finished and {stats.requests_failed} "
            "failed, in this run and those before it."
        )


async def own_shop(actor_input: dict[str, Any]) -> Shop:
    """The 100-product shop the Actor crawls when given no start URL, as slow as a real one.

    It is served on the port the runs before served it on, so that the URLs in the request
    queue still lead to it when a run goes on where another stopped.

    Raises:
        SystemExit: That port is taken now (the log says what to do).
    """
    delay = int(actor_input.get("shopDelayMillis", 500)) / 1000
    port = int(await Actor.get_value(SHOP_PORT, default_value=0))
    try:
        shop = Shop(pages=10, delay=delay, port=port)
    except OSError as exc:
        Actor.log.error(
            f"The Actor's own shop cannot be served on port {port} again ({exc.strerror}), and "
            "the request queue of the runs before leads there: free the port, or start over "
            "with a plain `apify run`, which empties the storages."
        )
        raise SystemExit(1) from None
    await Actor.set_value(SHOP_PORT, shop.server_address[1])
    return shop
