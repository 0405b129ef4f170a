"""One pod of a Kubernetes Indexed Job: its shard is its JOB_COMPLETION_INDEX, its state shared.

    JOB_COMPLETION_INDEX=3 python examples/kubernetes/indexed_worker.py

An Indexed Job (indexed-job.yaml beside this file) runs one pod per index, 0 to
``completions - 1``, with the index in ``JOB_COMPLETION_INDEX``, and replaces a pod that
fails or is evicted with one of the same index. Here the index is the shard and names its
key, so the replacement continues where the evicted pod saved: at once on SIGTERM (an
eviction, a drain, a rollout), or from the last periodic save if the node was lost.

``RESUMABLE_STORE_URL`` is the store every pod shares: a ``redis://`` URL or a SQLAlchemy
one (``postgresql+asyncpg://...``). Without it, a FileStore in a temporary directory, to
try the worker on one machine. ``ITEMS`` (default 100) is the size of a shard.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from resumable import FileStore, Outcome, Store, resumable
from resumable.redis import RedisStore
from resumable.sql import SQLStore

ITEMS = int(os.environ.get("ITEMS", "100"))
ABORTED = 128 + signal.SIGTERM  # the exit status of a process that SIGTERM ended


def open_store(url: str | None) -> Store:
    """The store a URL names: Redis, a SQL database, or (no URL) a local directory."""
    if url is None:
        return FileStore(Path(tempfile.gettempdir()) / "resumable-examples" / "indexed-job")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    return SQLStore(url)


async def process(shard: int, item: int) -> None:
    """The work for one item of a shard: a request, a query, a file to convert."""
    await asyncio.sleep(0.05)


# [docs: worker]
@resumable(key=lambda shard: f"backfill-{shard}", every=10)
async def backfill(shard: int, *, cursor: int = 0) -> AsyncIterator[int]:
    """Work through one shard's items; the cursor is the first item not done."""
    print(f"shard {shard}: starting at item {cursor}", flush=True)
    for item in range(cursor, ITEMS):
        await process(shard, item)
        yield item + 1


async def run(shard: int, store: Store) -> Outcome[int]:
    """Run (or resume) the shard on the shared store, and close its connections."""
    try:
        return await backfill.with_options(store=store)(shard)
    finally:
        aclose = getattr(store, "aclose", None)
        if aclose is not None:
            await aclose()


def main() -> int:
    """Work on the shard of this pod's index; exit non-zero unless the shard is done."""
    shard = int(os.environ["JOB_COMPLETION_INDEX"])
    outcome = asyncio.run(run(shard, open_store(os.environ.get("RESUMABLE_STORE_URL"))))
    print(
        f"shard {shard}: {outcome.status} at item {outcome.cursor}, "
        f"resumed from {outcome.resumed_from}"
    )
    # A pod that exits 0 marks its index complete, even while it is being evicted: a shard
    # stopped half-way must fail the pod, so that the Job runs the index again.
    return 0 if outcome.status == "completed" else ABORTED


# [docs: end]

if __name__ == "__main__":
    sys.exit(main())
