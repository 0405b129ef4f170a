"""One side of the cross-process fencing race (test_store_race.py), reused for many runs.

Usage: python race_child.py STORE_SPEC_JSON KEY

Each ``run`` line on stdin starts a run of a ``@resumable`` job with ``every=1`` on KEY that
counts up from its resumed cursor as fast as it can. When the run ends this prints one line:
``ended stale MESSAGE`` (`StaleWriterError`: taken over, or could not take over) or
``ended other TYPE MESSAGE``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from resumable import FileStore, StaleWriterError, Store, resumable


def open_store(spec: dict[str, Any]) -> Store:
    """Build the store a spec names: ``{"kind": "file" | "redis" | "sql", ...}``.

    Only the client library of the store named is imported: the fleet soak restarts its
    workers often, and importing SQLAlchemy and redis-py both doubles each start.
    """
    kind = spec["kind"]
    if kind == "file":
        return FileStore(spec["directory"], fsync=spec.get("fsync", True))
    if kind == "redis":
        from resumable.redis import RedisStore

        return RedisStore(spec["url"], prefix=spec["prefix"])
    if kind == "sql":
        from resumable.sql import SQLStore

        return SQLStore(spec["url"], table=spec["table"])
    raise ValueError(f"unknown store kind {kind!r}")


async def main() -> None:
    spec, key = json.loads(sys.argv[1]), sys.argv[2]
    store = open_store(spec)

    @resumable(key=key, store=store, every=1, interval=None, triggers=[])
    async def count(*, cursor: int = 0) -> AsyncIterator[int]:
        while True:
            cursor += 1
            yield cursor
            await asyncio.sleep(0)

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while (await stdin.readline()).strip() == b"run":
        try:
            await count()
        except StaleWriterError as exc:
            print("ended stale", str(exc).replace("\n", " "), flush=True)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever ended the run
            print("ended other", type(exc).__name__, str(exc).replace("\n", " "), flush=True)
        else:
            print("ended other returned", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
