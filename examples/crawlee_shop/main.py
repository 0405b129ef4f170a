"""The Actor: crawl a shop page by page, one dataset item per product, each exactly once.

The job's cursor is the listing page to crawl next. For each page, a `BeautifulSoupCrawler`
runs over the page and its product pages; the product handler pushes the product into the
job's outbox instead of the dataset. Once the page's crawl has returned, the job yields the
next page: the products pushed during the crawl belong to that cursor, and the outbox
delivers them to the Actor's default dataset together with it, exactly once, whatever
happens to the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from apify import Actor
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext
from crawlee.storage_clients import MemoryStorageClient
from crawlee.storages import RequestQueue

from resumable import Outbox, resumable


# [docs: crawl]
@resumable(key="shop")
async def crawl(
    shop: str, *, cursor: int = 0, out: Outbox[dict[str, object]] = Outbox.GIVEN
) -> AsyncIterator[int]:
    """Crawl the shop from listing page *cursor* on; yield the next page after each one."""
    # A request queue of the job's own, in memory: after a restart, the page in progress
    # is crawled again in full (a persisted queue would skip the products it had handled,
    # and their items would be lost with the crash).
    queue = await RequestQueue.open(storage_client=MemoryStorageClient())
    crawler = BeautifulSoupCrawler(request_manager=queue, parser="html.parser")
    more = True

    @crawler.router.default_handler
    async def listing(context: BeautifulSoupCrawlingContext) -> None:
        nonlocal more
        more = context.soup.select_one("a.next") is not None
        await context.enqueue_links(selector="a.product", label="product")

    @crawler.router.handler("product")
    async def product(context: BeautifulSoupCrawlingContext) -> None:
        out.push(
            {
                "url": context.request.url,
                "name": context.soup.h1.get_text() if context.soup.h1 else None,
                "price": int(context.soup.select_one(".price").get_text()),  # type: ignore[union-attr]
            }
        )

    page = cursor
    while more:
        await crawler.run([f"{shop}/list/{page}"])
        page += 1
        yield page  # the products pushed during this page's crawl belong to this cursor


# [docs: end]


async def main(shop: str) -> None:
    """Run the Actor over the shop at *shop*."""
    async with Actor:
        outcome = await crawl(shop)
        Actor.log.info(
            f"Run {outcome.status} at page {outcome.cursor}, resumed from "
            f"{outcome.resumed_from}; {outcome.outputs} products delivered in this run."
        )
