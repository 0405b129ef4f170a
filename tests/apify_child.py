"""An Actor for the end-to-end tests: it processes items 0..N-1 with one cursor per item.

Run by the tests, unmodified, through `resumable.testing.ActorProcess` (a child process
against the `PlatformEvents` stand-in). Each processed item is appended to a log file
*before* its cursor is yielded, so the parent can count how often every item was processed
across kills and restarts. The run's `Outcome` is printed as one ``OUTCOME {json}`` line at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from apify import Actor
from crawlee.events import Event

from resumable import Signals, Trigger, concurrently, resumable
from resumable._stores import Guard
from resumable.apify import ApifyEvents, ApifyStatus, ApifyStore

KEY = "items"


class FlakyStore(ApifyStore):
    """An `ApifyStore` whose saves fail once a migration has begun, *failures* times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.migrating = False

    async def start_failing(self) -> None:
        self.migrating = True

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        if self.migrating and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the key-value store is unreachable (injected)")
        await super().save(key, data, guard=guard)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, required=True, help="how many items to process")
    parser.add_argument("--log", required=True, help="file that lists each processed item")
    parser.add_argument("--delay", type=float, default=0.01, help="seconds of I/O per item")
    parser.add_argument("--cpu", type=float, default=0.0, help="seconds of CPU per item")
    parser.add_argument(
        "--failures", type=int, default=0, help="saves that fail once migrating began"
    )
    parser.add_argument("--reboot-at", type=int, default=None, help="Actor.reboot() at this item")
    parser.add_argument(
        "--status-interval", type=float, default=None, help="ApifyStatus every N seconds"
    )
    parser.add_argument(
        "--concurrent", type=int, default=0, help="process N items at a time, out of order"
    )
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    async with Actor:
        store: ApifyStore | None = None
        if args.failures:
            flaky = store = FlakyStore(args.failures)
            # Registered before the job's own listener, so it sees the event first.
            Actor.on(Event.MIGRATING, flaky.start_failing)
        log = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        triggers: list[Trigger] | None = None
        if args.status_interval:
            triggers = [Signals(), ApifyEvents(), ApifyStatus(interval=args.status_interval)]

        async def work(item: int) -> None:
            # Items finish out of order: a later one often before an earlier one.
            await asyncio.sleep(args.delay * (1 + (item * 7) % 5))
            os.write(log, f"{item}\n".encode())

        @resumable(key=KEY, store=store, triggers=triggers)
        async def crawl(*, cursor: int = 0) -> AsyncIterator[int]:
            async for watermark in concurrently(
                work, range(args.items), start=cursor, limit=args.concurrent
            ):
                yield watermark

        @resumable(key=KEY, store=store, triggers=triggers)
        async def process(*, cursor: int = 0) -> AsyncIterator[int]:
            for item in range(cursor, args.items):
                os.write(log, f"{item}\n".encode())
                if args.cpu:
                    spin_until = time.perf_counter() + args.cpu
                    while time.perf_counter() < spin_until:
                        pass
                if args.reboot_at == item:
                    await Actor.reboot()
                await asyncio.sleep(args.delay)
                yield item + 1

        outcome = await (crawl() if args.concurrent else process())
        os.close(log)
        print(
            "OUTCOME "
            + json.dumps(
                {
                    "status": outcome.status,
                    "cursor": outcome.cursor,
                    "resumed_from": outcome.resumed_from,
                    "yields": outcome.yields,
                    "saves": outcome.saves,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
