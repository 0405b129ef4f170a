"""What the outbox costs per item: ``out.push(item)`` + ``yield`` against appending to a list.

Every subject produces the same items (``{"id": i, "name": "item"}``, one per cursor) from
an async generator and is timed from the start of its run to its end, the final save and
the last delivery included. Subjects, in one process, alternated (the order flips every
repetition):

- ``bare loop``: ``async for`` over the generator, which appends each item to a list.
- ``@resumable, list``: the same job under ``@resumable`` (``MemoryStore``, no triggers,
  no timer), still appending to a list: the engine's own cost.
- ``@resumable, out.push`` into a sink that keeps the items in memory: the outbox's cost
  (the JSON check at each push, the records that carry the items, the deliveries).
- ``@resumable, out.push`` into ``JsonLinesSink`` on a temporary directory, fsynced: the
  same with a real file (a delivery every 1,000 items).

The ratio is each subject's time over the bare loop's, measured side by side.

Run: ``python benchmarks/outputs.py [--items N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resumable import JsonLinesSink, MemoryStore, Outbox, Sink, resumable  # noqa: E402

ITEMS = 1_000_000

Subject = Callable[[int], Awaitable[float]]


class KeepingSink:
    """A sink in memory: what is left of the outbox's cost without a file."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    async def count(self) -> int:
        return len(self.items)

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        return self.items[start : start + limit]

    async def append(self, items: Sequence[Any], start: int) -> None:
        self.items.extend(items)


async def bare(n: int) -> float:
    items: list[dict[str, Any]] = []

    async def produce(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            items.append({"id": i, "name": "item"})
            yield i + 1

    began = time.perf_counter()
    async for _ in produce():
        pass
    return time.perf_counter() - began


async def engine_with_a_list(n: int) -> float:
    items: list[dict[str, Any]] = []

    @resumable(key="list", store=MemoryStore(), triggers=[], interval=None)
    async def produce(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            items.append({"id": i, "name": "item"})
            yield i + 1

    began = time.perf_counter()
    await produce()
    return time.perf_counter() - began


def outbox_into(make_sink: Callable[[], Sink]) -> Subject:
    async def run(n: int) -> float:
        @resumable(key="outbox", store=MemoryStore(), sink=make_sink(), triggers=[], interval=None)
        async def produce(
            *, cursor: int = 0, out: Outbox[dict[str, Any]] = Outbox.GIVEN
        ) -> AsyncIterator[int]:
            for i in range(cursor, n):
                out.push({"id": i, "name": "item"})
                yield i + 1

        began = time.perf_counter()
        outcome = await produce()
        elapsed = time.perf_counter() - began
        assert n == outcome.outputs
        return elapsed

    return run


async def measure(subjects: dict[str, Subject], n: int, repeats: int) -> dict[str, float]:
    """Run every subject *repeats* times, alternating; return the median seconds of each."""
    times: dict[str, list[float]] = {name: [] for name in subjects}
    order = list(subjects)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else reversed(order):
            gc.collect()
            times[name].append(await subjects[name](n))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = iter(range(10**6))
        subjects: dict[str, Subject] = {
            "bare loop, list.append": bare,
            "@resumable, list.append": engine_with_a_list,
            "@resumable, out.push (memory sink)": outbox_into(KeepingSink),
            "@resumable, out.push (JsonLinesSink)": outbox_into(
                lambda: JsonLinesSink(Path(tmp) / f"{next(files)}.jsonl")
            ),
        }
        medians = asyncio.run(measure(subjects, args.items, args.repeats))
    floor = medians["bare loop, list.append"]
    print(f"### Outbox cost per item ({args.items:,} items, median of {args.repeats})\n")
    print("| subject | ns per item | ratio to the bare loop |")
    print("| --- | ---: | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds / args.items * 1e9:,.0f} | {seconds / floor:.2f}x |")


if __name__ == "__main__":
    main()
