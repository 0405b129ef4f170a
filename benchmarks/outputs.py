"""What the outbox costs per item: ``out.push(item)`` + ``yield`` against appending to a list.

Every subject runs the same generator, `shapes.produce` (one small dict, ``{"id": i,
"name": "item"}``, handed to ``out.push`` per cursor), timed from the start of its run to
its end, the final save and the last delivery included. Subjects, in one process, taking
turns (the order flips every repetition, after a warm-up round that is not counted):

- ``bare loop, list.append``: `produce` drained by ``async for``, its ``out`` a list whose
  ``push`` is ``list.append``: the floor.
- ``bare loop, orjson at the push``: the same loop, its ``push`` keeping each item's JSON text
  (``orjson.dumps``) and nothing else: what encoding alone costs, the least that any outbox
  costs which refuses an unfit item at its push (before it records or delivers anything).
- ``@resumable, list.append``: the same loop with a list of its own under ``@resumable``
  (``MemoryStore``, no triggers, no timer): the engine's own cost.
- ``@resumable, out.push (memory sink)``: `produce` itself under ``@resumable``, its items
  going through the outbox into a sink that keeps them in memory: the outbox's cost (the
  JSON check at each push, the records that carry the items, the deliveries).
- ``@resumable, out.push (JsonLinesSink)``: the same into ``JsonLinesSink`` on a temporary
  directory, fsynced: a real file.

The ratio is each subject's time over the bare loop's, measured side by side.

Run: ``python benchmarks/outputs.py [--items N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shapes  # noqa: E402 - beside this file
from measuring import per_item, per_item_table, rounds  # noqa: E402

from resumable import JsonLinesSink, MemoryStore, Sink, resumable  # noqa: E402

ITEMS = 1_000_000
REPEATS = 3
FLOOR = "bare loop, list.append"

Subject = Callable[[int], Awaitable[float]]
"""Runs *n* items and returns the seconds the run took."""


async def bare(n: int) -> float:
    """The floor: `produce` drained by ``async for`` into a list."""
    began = time.perf_counter()
    items = await shapes.drain_into_list(n)
    elapsed = time.perf_counter() - began
    assert n == len(items)
    return elapsed


class Encoding:
    """An outbox that only encodes: each item's JSON text kept at the push (orjson)."""

    __slots__ = ("texts",)

    def __init__(self) -> None:
        self.texts: list[str] = []

    def push(self, item: Any) -> None:
        # As text, as the outbox keeps it: orjson's bytes, kept by the million, cost more in
        # memory than encoding them did.
        self.texts.append(orjson.dumps(item).decode())


async def encoded(n: int) -> float:
    """The floor with a push that encodes each item and keeps its text."""
    out = Encoding()
    began = time.perf_counter()
    async for _ in shapes.produce(n, out=out):
        pass
    elapsed = time.perf_counter() - began
    assert n == len(out.texts)
    return elapsed


async def engine_with_a_list(n: int) -> float:
    """The same loop under ``@resumable``, the items still appended to a list."""
    items = shapes.Listing()
    produce = resumable(key=shapes.KEY, store=MemoryStore(), **shapes.QUIET)(shapes.produce_into)
    began = time.perf_counter()
    await produce(n, items)
    elapsed = time.perf_counter() - began
    assert n == len(items)
    return elapsed


def outbox_into(make_sink: Callable[[], Sink]) -> Subject:
    """`produce` under ``@resumable``, its items pushed into the sink *make_sink* returns."""

    async def run(n: int) -> float:
        produce = shapes.pushing(MemoryStore(), make_sink(), **shapes.QUIET)
        began = time.perf_counter()
        outcome = await produce(n)
        elapsed = time.perf_counter() - began
        assert n == outcome.outputs
        return elapsed

    return run


async def measure(subjects: dict[str, Subject], n: int, repeats: int) -> dict[str, Any]:
    """Run every subject *repeats* times, taking turns; return the figures per item."""
    seconds: dict[str, list[float]] = {name: [] for name in subjects}
    for repeat, name in rounds(list(subjects), repeats):
        gc.collect()
        elapsed = await subjects[name](n)
        if repeat:
            seconds[name].append(elapsed)
    return per_item(seconds, dict.fromkeys(subjects, n), FLOOR)


def run(items: int = ITEMS, repeats: int = REPEATS) -> dict[str, Any]:
    """Measure every subject over *items*, *repeats* times each; figures per subject."""
    with tempfile.TemporaryDirectory(prefix="resumable-bench-outputs-") as tmp:
        files = iter(range(10**6))
        subjects: dict[str, Subject] = {
            FLOOR: bare,
            "bare loop, orjson at the push": encoded,
            "@resumable, list.append": engine_with_a_list,
            "@resumable, out.push (memory sink)": outbox_into(shapes.KeepingSink),
            "@resumable, out.push (JsonLinesSink)": outbox_into(
                lambda: JsonLinesSink(Path(tmp) / f"{next(files)}.jsonl")
            ),
        }
        return asyncio.run(measure(subjects, items, repeats))


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table."""
    return per_item_table(results, "the bare loop")


def main() -> None:
    """Run with the command line's sizes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    print(table(run(args.items, args.repeats)))


if __name__ == "__main__":
    main()
