"""A CSV file exported to JSON Lines through the outbox, against a loop writing the file itself.

Both sides run the same generator, `convert`: it reads a CSV file with `csv.DictReader` and
pushes each row (a dict of strings) into its ``out``, one cursor per row. Subjects, in one
process, taking turns (the order flips every repetition, after a warm-up round that is not
counted):

- ``bare loop, json.dumps per row``: `convert` drained by ``async for``, its ``out`` an
  object whose ``push`` writes ``json.dumps(row)`` and a newline to the file, fsynced once
  at the end: the floor, what a script without ``resumable`` does.
- ``@resumable, out.push (JsonLinesSink)``: `convert` itself under ``@resumable``
  (``MemoryStore``, no triggers, no timer), its rows pushed through the outbox into
  ``JsonLinesSink``, fsynced at every delivery: the same file, exactly once.

Each run is timed from its start to its end (the final save and the last delivery
included); the ratio is each subject's time over the floor's, measured side by side.

Run: ``python benchmarks/exports.py [--rows N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measuring import per_item, per_item_table, rounds  # noqa: E402
from shapes import KEY, QUIET, Pushes  # noqa: E402

from resumable import JsonLinesSink, MemoryStore, Outbox, resumable  # noqa: E402

ROWS = 300_000
REPEATS = 3
FLOOR = "bare loop, json.dumps per row"
FIELDS = ("id", "name", "email", "city", "amount", "created")


def write_csv(path: Path, rows: int) -> None:
    """Write the source: *rows* rows of the usual kinds of fields (all strings once read)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(FIELDS)
        for i in range(rows):
            writer.writerow(
                (i, f"Customer {i}", f"c{i}@example.com", "Praha", f"{i % 997}.50", "2026-01-02")
            )


async def convert(
    source: str, *, cursor: int = 0, out: Pushes = Outbox.GIVEN
) -> AsyncIterator[int]:
    """The job: each row of the CSV file *source* pushed as a dict, one cursor per row."""
    # Blocking reads, as in the floor: the same generator on both sides.
    with Path(source).open(newline="") as file:  # noqa: ASYNC230
        rows = itertools.islice(csv.DictReader(file), cursor, None)
        for i, row in enumerate(rows, cursor):
            out.push(row)
            yield i + 1


class Lines:
    """The floor's outbox: ``push`` writes the item's ``json.dumps`` as a line of *file*."""

    def __init__(self, file: TextIO) -> None:
        self.file = file

    def push(self, item: dict[str, Any], /) -> None:
        """Write *item* as one line."""
        self.file.write(json.dumps(item) + "\n")


Subject = Callable[[str, Path], Awaitable[float]]
"""Exports the CSV file at the first path into the second; returns the seconds it took."""


async def bare(source: str, target: Path) -> float:
    """The floor: `convert` drained by ``async for``, each row written with ``json.dumps``."""
    began = time.perf_counter()
    with target.open("w") as file:
        async for _ in convert(source, out=Lines(file)):
            pass
        file.flush()
        os.fsync(file.fileno())
    return time.perf_counter() - began


async def exported(source: str, target: Path) -> float:
    """`convert` under ``@resumable``, its rows pushed into ``JsonLinesSink(target)``."""
    job = resumable(key=KEY, store=MemoryStore(), sink=JsonLinesSink(target), **QUIET)(convert)
    began = time.perf_counter()
    await job(source)
    return time.perf_counter() - began


async def measure(
    subjects: dict[str, Subject], source: Path, tmp: Path, rows: int, repeats: int
) -> dict[str, Any]:
    """Run every subject *repeats* times, taking turns; check its file; the figures per row."""
    seconds: dict[str, list[float]] = {name: [] for name in subjects}
    for run_number, (repeat, name) in enumerate(rounds(list(subjects), repeats)):
        target = tmp / f"{run_number}.jsonl"
        gc.collect()
        elapsed = await subjects[name](str(source), target)
        with target.open() as lines:
            assert rows == sum(1 for _ in lines)
        target.unlink()
        if repeat:
            seconds[name].append(elapsed)
    return per_item(seconds, dict.fromkeys(subjects, rows), FLOOR)


def run(rows: int = ROWS, repeats: int = REPEATS) -> dict[str, Any]:
    """Measure both subjects over a CSV file of *rows* rows, *repeats* times each."""
    with tempfile.TemporaryDirectory(prefix="resumable-bench-exports-") as directory:
        tmp = Path(directory)
        source = tmp / "source.csv"
        write_csv(source, rows)
        subjects: dict[str, Subject] = {
            FLOOR: bare,
            "@resumable, out.push (JsonLinesSink)": exported,
        }
        return asyncio.run(measure(subjects, source, tmp, rows, repeats))


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table."""
    return per_item_table(results, "the bare loop")


def main() -> None:
    """Run with the command line's sizes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    print(table(run(args.rows, args.repeats)))


if __name__ == "__main__":
    main()
