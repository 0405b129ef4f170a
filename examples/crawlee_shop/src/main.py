"""The Actor: crawl a shop page by page, one dataset item per product, each exactly once.

The job's cursor is the listing page to crawl next. For each page, a `BeautifulSoupCrawler`
runs over the page and its product pages; the product handler pushes the product into the
job's outbox instead of the dataset. Once the page's crawl has returned, the job yields the
next page: the products pushed during the crawl belong to that cursor, and the outbox
delivers them to the Actor's default dataset together with it, exactly once, whatever
happens to the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from apify import Actor
from crawlee.crawlers import BeautifulSoupCrawler, BeautifulSoupCrawlingContext
from crawlee.storage_clients import MemoryStorageClient
from crawlee.storages import RequestQueue

from resumable import Outbox, resumable

from .shop import Shop


# [docs: crawl]
@resumable(key="shop")
async def crawl(
    shop: str, *, cursor: int = 0, out: Outbox[dict[str, object]] = Outbox.GIVEN
) -> AsyncIterator[int]:
    """Crawl the shop from listing page *cursor* on; yield the next page after each one."""
    # A request queue of the job's own, in memory: after a restart, the page in progress
    # is crawled again in full (a persisted queue keeps its own state, not saved with the
    # cursor: after a crash it skips some products and hands out others again).
    queue = await RequestQueue.open(storage_client=MemoryStorageClient())
    crawler = BeautifulSoupCrawler(request_manager=queue, parser="html.parser")
    listed = more = True

    @crawler.router.default_handler
    async def listing(context: BeautifulSoupCrawlingContext) -> None:
        nonlocal listed, more
        listed, more = True, context.soup.select_one("a.next") is not None
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
        listed = False
        await crawler.run([f"{shop}/list/{page}"])
        if not listed:
            break  # no such page (a finished crawl, run again): the cursor stays on it
        page += 1
        yield page  # the products pushed during this page's crawl belong to this cursor


# [docs: end]


async def main(shop: str | None = None) -> None:
    """Run the Actor over the shop at *shop*, else at the input's ``shopUrl``.

    With neither, it crawls a 5-page shop that it serves itself for the run.
    """
    async with Actor:
        actor_input = await Actor.get_input() or {}
        with contextlib.ExitStack() as served:
            url = shop or actor_input.get("shopUrl")
            if not url:
                url = served.enter_context(Shop(pages=5)).start().url
            outcome = await crawl(url)
        Actor.log.info(
            f"Run {outcome.status} at page {outcome.cursor}, resumed from "
            f"{outcome.resumed_from}; {outcome.outputs} products delivered in this run."
        )
