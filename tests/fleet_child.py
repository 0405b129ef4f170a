"""One worker of the fleet soak (test_fleet_soak.py): runs shards of a job, one at a time.

Usage: python fleet_child.py SPEC_JSON DIRECTORY

SPEC_JSON holds ``store`` (a spec for race_child.open_store), ``items`` (per shard),
``every`` (the save policy) and ``work`` (seconds each item takes). Each ``run SHARD`` line
on stdin runs the shard's job, key ``shard-SS``: for each item from the resumed cursor on
it does the work, appends ``ITEM RUN`` to DIRECTORY/log/shard-SS.log, pushes ``{"n": ITEM}``
into its outbox (delivered to the JsonLinesSink DIRECTORY/sink/shard-SS.jsonl) and yields
the cursor after it. RUN names the run: this process's id and a counter.

It prints ``ready`` once it can take work, then per run ``start SHARD RUN CURSOR`` once the
run has taken the key over and ``ended SHARD RUN KIND DETAIL``, KIND being ``completed``,
``stale`` (`StaleWriterError`), ``store`` (`StoreError`) or ``other``; and ``warning
MESSAGE`` for every warning the ``resumable`` logger emits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from race_child import open_store

from resumable import JsonLinesSink, Outbox, StaleWriterError, StoreError, resumable


class PrintWarnings(logging.Handler):
    """Passes the library's warnings to the supervisor (one line each)."""

    def emit(self, record: logging.LogRecord) -> None:
        print("warning", record.getMessage().replace("\n", " "), flush=True)


def shard_key(shard: int) -> str:
    """The key of a shard's job: one key per shard."""
    return f"shard-{shard:02d}"


async def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    directory = Path(sys.argv[2])
    items, work_time = int(spec["items"]), float(spec["work"])
    logging.getLogger("resumable").addHandler(PrintWarnings(logging.WARNING))
    store = open_store(spec["store"])

    @resumable(
        key=lambda shard, run: shard_key(shard),
        store=store,
        every=int(spec["every"]),
        interval=None,  # the policy is `every` alone, so the bound on repeats is in items
        triggers=[],
    )
    async def process(
        shard: int, run: str, *, cursor: int = 0, out: Outbox[dict[str, int]]
    ) -> AsyncIterator[int]:
        print("start", shard, run, cursor, flush=True)
        path = directory / "log" / f"{shard_key(shard)}.log"
        log = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for item in range(cursor, items):
                await asyncio.sleep(work_time)
                os.write(log, f"{item} {run}\n".encode())  # one write: a kill never tears it
                out.push({"n": item})
                yield item + 1
        finally:
            os.close(log)

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    opening = getattr(store, "open", None)
    if opening is not None:  # connect now: a spare is ready to work the moment it is called
        await opening()
    print("ready", flush=True)
    runs = 0
    while (line := (await stdin.readline()).split()) and line[0] == b"run":
        shard, runs = int(line[1]), runs + 1
        run = f"{os.getpid()}.{runs}"
        # A kill cannot lose what the page cache holds: no fsync, to keep the soak fast.
        sink = JsonLinesSink(directory / "sink" / f"{shard_key(shard)}.jsonl", fsync=False)
        try:
            outcome = await process.with_options(sink=sink)(shard, run)
        except StaleWriterError as exc:
            kind, detail = "stale", str(exc)
        except StoreError as exc:
            kind, detail = "store", str(exc)
        except Exception as exc:  # noqa: BLE001 - the supervisor reports whatever ended it
            kind, detail = "other", f"{type(exc).__name__}: {exc}"
        else:
            kind, detail = "completed", f"{outcome.status} {outcome.cursor}"
        print("ended", shard, run, kind, detail.replace("\n", " "), flush=True)
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        await aclose()


if __name__ == "__main__":
    asyncio.run(main())
