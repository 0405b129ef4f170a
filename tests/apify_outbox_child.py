"""An Actor whose job pushes one dataset item per cursor through its outbox.

Run by `test_apify_outputs.py` in a child process with the environment of a
`PlatformEvents` stand-in. The job takes the defaults inside ``async with Actor:``: the
Actor's key-value store for its cursor, its default dataset (`DatasetSink`) for its
outputs. Each item is logged to LOG as it is pushed, so the parent can see progress.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

from apify import Actor

from resumable import Outbox, resumable
from resumable.testing import use_stand_in


async def main(items: int, log_path: str) -> None:
    use_stand_in()
    async with Actor:
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        @resumable(key="products")
        async def crawl(
            *, cursor: int = 0, out: Outbox[dict[str, int]] = Outbox.GIVEN
        ) -> AsyncIterator[int]:
            for item in range(cursor, items):
                out.push({"product": item})
                os.write(log, f"{item}\n".encode())
                await asyncio.sleep(0.005)
                yield item + 1

        outcome = await crawl()
        print("OUTCOME " + json.dumps({"outputs": outcome.outputs, "cursor": outcome.cursor}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
