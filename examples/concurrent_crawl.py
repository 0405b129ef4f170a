"""Fetch many pages at once and still resume safely: the cursor is the watermark.

    python examples/concurrent_crawl.py

With 16 fetches in flight, pages finish out of order. `concurrently` yields the watermark,
the first position not finished yet, so the saved cursor never skips a page still in
flight. Here a fetch fails half-way; the second run starts at the watermark. Pages that
had finished beyond it are fetched again: at-least-once, never lost.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from resumable import FileStore, concurrently, resumable

STATE = FileStore(Path(tempfile.gettempdir()) / "resumable-examples" / "concurrent-crawl")
URLS = [f"https://example.com/page/{n}" for n in range(200)]
fetched: Counter[str] = Counter()
broken = {URLS[120]}  # fails once, like a server having a bad moment


async def fetch(url: str) -> None:
    """Fetch one page (a random delay here) and keep it."""
    await asyncio.sleep(random.uniform(0.001, 0.02))
    if url in broken:
        broken.discard(url)
        raise ConnectionError(f"{url}: connection reset")
    fetched[url] += 1


# [docs: crawl]
@resumable(key="crawl", store=STATE, every=10)
async def crawl(urls: list[str], *, cursor: int = 0) -> AsyncIterator[int]:
    """Fetch *urls*, 16 at a time; the cursor is how many leading URLs are done."""
    async for watermark in concurrently(fetch, urls, start=cursor, limit=16):
        yield watermark


# [docs: end]


async def main() -> None:
    """Crawl, fail half-way, crawl again from the watermark."""
    await crawl.reset()  # each run of this example starts over
    try:
        await crawl(URLS)
    except ConnectionError as exc:
        saved = await crawl.state(URLS)
        assert saved is not None
        print(f"first run failed: {exc}; saved watermark {saved.cursor}")
    outcome = await crawl(URLS)
    twice = sum(1 for count in fetched.values() if count > 1)
    print(f"second run resumed from {outcome.resumed_from}: {outcome.status}")
    print(f"{len(fetched)} of {len(URLS)} pages fetched; {twice} of them twice, none lost")
    assert len(fetched) == len(URLS)


if __name__ == "__main__":
    asyncio.run(main())
