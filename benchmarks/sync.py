"""What a plain generator's job costs per yield, against a bare ``for``; and its memory over time.

Every subject runs the same plain generator of cursors (`shapes.count_up_plain`: one ``int``
per item, no work in between, so only the bookkeeping shows; ``@resumable`` decorates that
very function), timed from the start of the run to its end, its own start and end included
(the job claims its key, starts its loop thread, writes its final state and stops the
thread). Subjects, in one process, taking turns (the order flips every repetition, after a
warm-up round that is not counted):

- ``floor``: ``for cursor in count_up_plain(n)``, keeping the latest cursor in a local.
- ``@resumable`` on the plain generator, with ``MemoryStore`` and with ``FileStore`` (default
  triggers and interval).
- ``@resumable`` with a store whose every save takes 50 ms, saving every 1,000 yields: the
  yields do not wait for it.
- ``with job()``: the context-manager form, one ``j.advance`` call per item.

Memory: one ``@resumable`` run of ``--memory-items`` yields (a save every 100,000), with the
process's resident set size sampled every tenth of the way; flat means the run keeps nothing
per yield.

Run: ``python benchmarks/sync.py [--items N] [--repeats R] [--memory-items M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shapes  # noqa: E402 - beside this file
from measuring import duration, per_item, rounds, rss  # noqa: E402

from resumable import FileStore, MemoryStore, Store, resumable  # noqa: E402
from resumable._stores import Guard  # noqa: E402

ITEMS = 1_000_000
REPEATS = 5
MEMORY_ITEMS = 10_000_000
FLOOR = "floor: bare `for`"

Subject = Callable[[int], float]
"""Runs *n* items and returns the seconds the run took."""


def floor(n: int) -> float:
    """A bare ``for`` over the same generator, keeping the latest cursor."""
    began = time.perf_counter()
    latest = shapes.drain_plain(n)
    elapsed = time.perf_counter() - began
    assert latest == n
    return elapsed


class SlowStore(MemoryStore):
    """A MemoryStore whose every save takes 50 ms."""

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Wait 50 ms, then save."""
        await asyncio.sleep(0.05)
        await super().save(key, data, guard=guard)


def decorated(make_store: Callable[[], Store], every: int | None = None) -> Subject:
    """``@resumable`` over `count_up_plain` with the store *make_store* returns."""

    def run(n: int) -> float:
        counted = shapes.decorated_plain(make_store(), every=every)
        counted.reset(n)
        began = time.perf_counter()
        outcome = counted(n)
        elapsed = time.perf_counter() - began
        assert outcome.cursor == n
        return elapsed

    return run


def with_job(n: int) -> float:
    """``with job()``, ``advance`` called once per cursor of `count_up_plain`."""
    began = time.perf_counter()
    persisted = shapes.advancing_plain(n, MemoryStore())
    elapsed = time.perf_counter() - began
    assert persisted == n
    return elapsed


def measure(subjects: dict[str, Subject], n: int, repeats: int) -> dict[str, Any]:
    """Each subject's whole run and its loop alone, per item and against the floor's."""
    whole: dict[str, list[float]] = {name: [] for name in subjects}
    loop: dict[str, list[float]] = {name: [] for name in subjects}
    for repeat, name in rounds(list(subjects), repeats):
        gc.collect()
        elapsed = subjects[name](n)
        if repeat:
            whole[name].append(elapsed)
            loop[name].append(shapes.LOOP[1] - shapes.LOOP[0])
    items = dict.fromkeys(subjects, n)
    return {"whole": per_item(whole, items, FLOOR), "loop": per_item(loop, items, FLOOR)}


def memory(n: int) -> list[tuple[int, int]]:
    """(yields so far, RSS) at every tenth of a run of *n* yields."""
    samples: list[tuple[int, int]] = []
    step = max(1, n // 10)

    def sampled(n: int, *, cursor: int = 0) -> Iterator[int]:
        for i in range(cursor, n):
            if i % step == 0:
                samples.append((i, rss()))
            yield i + 1

    counted = resumable(key="bench-sync-memory", store=MemoryStore(), every=100_000)(sampled)
    outcome = counted(n)
    samples.append((n, rss()))
    assert outcome.cursor == n
    return samples


def run(
    items: int = ITEMS, repeats: int = REPEATS, memory_items: int = MEMORY_ITEMS
) -> dict[str, Any]:
    """Measure every subject over *items*, then memory over a run of *memory_items*."""
    os.environ.setdefault("RESUMABLE_PROGRESS", "0")
    with tempfile.TemporaryDirectory(prefix="resumable-bench-sync-") as directory:
        subjects: dict[str, Subject] = {
            FLOOR: floor,
            "@resumable, MemoryStore": decorated(MemoryStore),
            "@resumable, FileStore": decorated(lambda: FileStore(directory)),
            "@resumable, 50 ms saves every 1,000": decorated(SlowStore, every=1000),
            "with job(), j.advance()": with_job,
        }
        results = measure(subjects, items, repeats)
    return {**results, "memory": memory(memory_items)}


def table(results: dict[str, Any]) -> str:
    """Render *results* as two markdown tables: the cost per yield, the memory over time."""
    whole, loop = results["whole"], results["loop"]
    lines = [
        "| subject | items | per yield, whole run | x floor | per yield, loop alone | x floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in whole.items():
        lines.append(
            f"| {name} | {r['items']:,} | {duration(r['ns_per_item'])} | {r['ratio']:.2f}x "
            f"| {duration(loop[name]['ns_per_item'])} | {loop[name]['ratio']:.2f}x |"
        )
    samples = results["memory"]
    first = samples[1][1] if len(samples) > 1 else samples[0][1]
    growth = ", ".join(f"{(size - first) / 1024:+.0f}" for _, size in samples)
    lines += [
        "",
        (
            f"Resident memory over one run of {samples[-1][0]:,} yields (a save every "
            f"100,000): {first / 2**20:.1f} MiB after the first tenth, "
            f"{(samples[-1][1] - first) / 1024:+.0f} KiB at the end (KiB since the first "
            f"tenth, at every tenth: {growth})."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """Run with the command line's sizes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--memory-items", type=int, default=MEMORY_ITEMS)
    args = parser.parse_args()
    print(table(run(args.items, args.repeats, args.memory_items)))


if __name__ == "__main__":
    main()
