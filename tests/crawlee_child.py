"""A resumable job that runs one Crawlee crawler per page; SIGTERM arrives mid-page.

Usage: python crawlee_child.py STATE_DIR. Prints PAGE-DONE N after each page, MID-PAGE when
it sends itself SIGTERM during page 2, and the Outcome at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

from crawlee import Request
from crawlee.crawlers import BasicCrawler, BasicCrawlingContext
from crawlee.storage_clients import MemoryStorageClient

from resumable import FileStore, resumable

state = sys.argv[1]


@resumable(key="crawl", store=FileStore(state), interval=None)
async def pages(*, cursor: int = 0) -> AsyncIterator[int]:
    for page in range(cursor, 20):
        crawler = BasicCrawler(storage_client=MemoryStorageClient(), max_request_retries=0)

        @crawler.router.default_handler
        async def handle(context: BasicCrawlingContext, page: int = page) -> None:
            if page == 2:
                print("MID-PAGE", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.5)
            print("PAGE-DONE", page, flush=True)

        url = f"https://shop.invalid/page/{page}"
        await crawler.run([Request.from_url(url, unique_key=str(page))])
        yield page + 1


out = asyncio.run(pages())
print("OUTCOME", out.status, out.cursor, flush=True)
