"""Per-item overhead of `concurrently` against a plain bounded TaskGroup with a Semaphore.

Both run the same no-op async worker over the same items with the same limit, alternating
which goes first in each repetition so that drift (thermal, other load) hits both alike:
once over a range (a sequence), once over an async generator (a source read in a task of
its own by `concurrently`). Two more subjects take each worker's result (one small dict) as
an output: ``concurrently(out=)`` with an `Outbox` (each result checked and kept as JSON),
and with a list whose ``push`` is ``list.append`` (the floor for it).

Run from the repository root::

    python benchmarks/concurrency.py [--items N] [--repeats R] [--limit L]

with the package installed (or ``PYTHONPATH=.``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

from measuring import rounds
from shapes import Listing

from resumable import Outbox
from resumable._codec import make_converter
from resumable._concurrency import concurrently

LIMIT = 64


async def _noop(item: int) -> None:
    """The worker: as close to nothing as an awaited coroutine gets."""


async def _result(item: int) -> dict[str, Any]:
    """The worker with an output: one small dict, as `shapes.produce` pushes."""
    return {"id": item, "name": "item"}


async def _async_range(items: int) -> AsyncIterator[int]:
    """The async source: never waits, so only the cost of reading it is measured."""
    for item in range(items):
        yield item


async def _taskgroup(items: Iterable[int] | AsyncIterator[int], limit: int) -> None:
    """The reference: acquire a slot, then start a task that releases it when done."""
    slots = asyncio.Semaphore(limit)

    async def guarded(item: int) -> None:
        try:
            await _noop(item)
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        if isinstance(items, AsyncIterator):
            async for item in items:
                await slots.acquire()
                group.create_task(guarded(item))
        else:
            for item in items:
                await slots.acquire()
                group.create_task(guarded(item))


async def _concurrently(items: Iterable[int] | AsyncIterator[int], limit: int) -> None:
    """The subject, consumed the way a job does: one step per watermark advance."""
    async for _ in concurrently(_noop, items, limit=limit):
        pass


async def _into_a_list(items: Iterable[int] | AsyncIterator[int], limit: int) -> None:
    """`concurrently` with outputs, each result appended to a list: the floor for `out=`."""
    out: Any = Listing()  # what concurrently calls of an outbox: push
    async for _ in concurrently(_result, items, limit=limit, out=out):
        pass


async def _into_an_outbox(items: Iterable[int] | AsyncIterator[int], limit: int) -> None:
    """`concurrently(out=)` with an outbox that never asks for a save: the cost of a push."""
    out: Outbox[Any] = Outbox(make_converter(), lambda: None, items=sys.maxsize, size=sys.maxsize)
    async for _ in concurrently(_result, items, limit=limit, out=out):
        pass


Subject = Callable[[Iterable[int] | AsyncIterator[int], int], Coroutine[Any, Any, None]]


def _time(subject: Subject, items: int, limit: int, source: str) -> float:
    """Seconds one run of *subject* takes, in a fresh event loop, without the loop's setup."""

    async def timed() -> float:
        began = time.perf_counter()
        await subject(range(items) if source == "sync" else _async_range(items), limit)
        return time.perf_counter() - began

    gc.collect()
    return asyncio.run(timed())


def run(items: int, repeats: int, limit: int = LIMIT) -> dict[str, float]:
    """Measure both subjects *repeats* times each, alternating, and summarize.

    Args:
        items: Items per run.
        repeats: Runs per subject.
        limit: Workers in flight at once, for both subjects.

    Returns:
        Median microseconds per item over a range for ``concurrently`` and ``taskgroup``, and
        ``ratio`` (concurrently over taskgroup, so below 1 means concurrently is faster); the
        same over an async generator, prefixed ``async_``; ``list`` and ``outbox`` (the
        results taken as outputs) likewise, and ``out_ratio``, outbox over list.
    """
    subjects: dict[str, Subject] = {
        "concurrently": _concurrently,
        "taskgroup": _taskgroup,
        "list": _into_a_list,
        "outbox": _into_an_outbox,
    }
    result: dict[str, float] = {}
    for source, prefix in (("sync", ""), ("async", "async_")):
        seconds: dict[str, list[float]] = {name: [] for name in subjects}
        for _, name in rounds(list(subjects), repeats, warm_up=False):
            seconds[name].append(_time(subjects[name], items, limit, source))
        for name, runs in seconds.items():
            result[f"{prefix}{name}_us_per_item"] = statistics.median(runs) / items * 1e6
        result[f"{prefix}ratio"] = (
            result[f"{prefix}concurrently_us_per_item"] / result[f"{prefix}taskgroup_us_per_item"]
        )
        result[f"{prefix}out_ratio"] = (
            result[f"{prefix}outbox_us_per_item"] / result[f"{prefix}list_us_per_item"]
        )
    return result


def table(result: dict[str, float]) -> str:
    """Render *result* as a markdown table, the ratios below it."""
    lines = [
        "| subject | µs per item, over a range | over an async generator |",
        "| --- | ---: | ---: |",
    ]
    for name, label in (
        ("concurrently", "`concurrently`"),
        ("taskgroup", "`TaskGroup` + `Semaphore`"),
        ("list", "`concurrently`, results appended to a list"),
        ("outbox", "`concurrently(out=)`, results pushed into an `Outbox`"),
    ):
        lines.append(
            f"| {label} | {result[f'{name}_us_per_item']:.3f} "
            f"| {result[f'async_{name}_us_per_item']:.3f} |"
        )
    lines += [
        "",
        (
            f"Ratio (concurrently / TaskGroup): **{result['ratio']:.2f}x** over a range, "
            f"**{result['async_ratio']:.2f}x** over an async generator. "
            f"`out=` (an Outbox / a list): **{result['out_ratio']:.2f}x** over a range, "
            f"**{result['async_out_ratio']:.2f}x** over an async generator."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark with the command line's sizes and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args()
    result = run(args.items, args.repeats, args.limit)
    print(f"{args.items:,} no-op items, limit={args.limit}, median of {args.repeats} runs each\n")
    print(table(result))


if __name__ == "__main__":
    main()
