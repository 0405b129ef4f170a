"""An Actor that crawls the example Actor's graph-shaped shop with a Crawlee crawler.

Usage: python crawl_child.py MODE URL, with MODE ``exactly-once`` (the crawler run by
`resumable.crawlee.exactly_once`) or ``plain`` (``crawler.run`` itself, the control). The
handler is the same in both, written for Crawlee alone: it enqueues every product and
listing link, and on a product page pushes the product, keeps its price in the key-value
store and charges the ``product`` event. Run it with an environment from
``PlatformEvents.env(storage, at_home=False)`` and ``ACTOR_TEST_PAY_PER_EVENT=true``.

Environment: ``CRAWL_CONCURRENCY`` (default 10), ``CRAWL_MAX_REQUESTS`` (default: none).
Prints ``OUTCOME <status> <requests finished>`` at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys

from apify import Actor
from crawlee import ConcurrencySettings
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext

from resumable.apify import charge
from resumable.crawlee import exactly_once
from resumable.testing import use_stand_in


def make_crawler() -> BeautifulSoupCrawler:
    """The crawler, made inside ``async with Actor:`` (it takes the Actor's storages)."""
    concurrency = int(os.environ.get("CRAWL_CONCURRENCY", "10"))
    limit = os.environ.get("CRAWL_MAX_REQUESTS")
    crawler = BeautifulSoupCrawler(
        parser="html.parser",
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency,
            desired_concurrency=concurrency,
            max_concurrency=concurrency,
        ),
        max_requests_per_crawl=int(limit) if limit else None,
    )

    @crawler.router.default_handler
    async def handle(context: BeautifulSoupCrawlingContext) -> None:
        await context.enqueue_links(selector="a.product, a.next, a.list")
        if "/product/" in context.request.url:
            number = context.request.url.rsplit("/", 1)[1]
            price = context.soup.select_one(".price")
            await context.push_data({"product": int(number), "url": context.request.url})
            prices = await context.get_key_value_store()
            await prices.set_value(f"price-{number}", price.get_text() if price else None)
            await charge("product")

    return crawler


async def main(mode: str, url: str) -> None:
    async with Actor:
        crawler = make_crawler()
        if mode == "plain":
            stats = await crawler.run([f"{url}/list/0"])
            status = "plain"
        else:
            run = exactly_once(crawler, key="shop")
            stats = await run.run([f"{url}/list/0"])
            status = run.outcome.status if run.outcome is not None else "none"
        print("OUTCOME", status, stats.requests_finished, flush=True)


if __name__ == "__main__":
    use_stand_in()
    asyncio.run(main(sys.argv[1], sys.argv[2]))
