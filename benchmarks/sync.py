"""What a plain generator's job costs per yield, against a bare ``for``; and its memory over time.

Every subject runs the same plain generator of cursors (``count_up``: one ``int`` per item,
no work in between, so only the bookkeeping shows), timed from the start of the run to its
end, its own start and end included (the job claims its key, starts its loop thread, writes
its final state and stops the thread). Subjects, in one process, alternated (the order flips
every repetition):

- ``floor``: ``for cursor in count_up(n)``, keeping the latest cursor in a local.
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
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resumable import FileStore, MemoryStore, Store, job, resumable  # noqa: E402
from resumable._stores import Guard  # noqa: E402

ITEMS = 1_000_000
MEMORY_ITEMS = 10_000_000

Subject = Callable[[int], float]
"""Runs *n* items and returns the seconds the run took."""

LOOP: list[float] = [0.0, 0.0]
"""When the latest ``count_up`` began its first item and finished its last one."""


def count_up(n: int, *, cursor: int = 0) -> Iterator[int]:
    """The job every subject runs: one cursor per item, nothing else."""
    LOOP[0] = time.perf_counter()
    for i in range(cursor, n):
        yield i + 1
    LOOP[1] = time.perf_counter()


def floor(n: int) -> float:
    """A bare ``for`` over the same generator, keeping the latest cursor."""
    began = time.perf_counter()
    latest = 0
    for cursor in count_up(n):
        latest = cursor
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
    """``@resumable`` over ``count_up`` with the store *make_store* returns."""

    def run(n: int) -> float:
        counted = resumable(key="bench-sync", store=make_store(), every=every)(count_up)
        counted.reset(n)
        began = time.perf_counter()
        outcome = counted(n)
        elapsed = time.perf_counter() - began
        assert outcome.cursor == n
        return elapsed

    return run


def with_job(n: int) -> float:
    """``with job()``, ``advance`` called once per item."""
    began = time.perf_counter()
    with job("bench-sync", cursor=0, store=MemoryStore()) as j:
        for cursor in count_up(n, cursor=j.cursor):
            j.advance(cursor)
    elapsed = time.perf_counter() - began
    assert j.persisted == n
    return elapsed


def measure(subjects: dict[str, Subject], n: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each subject's whole run and of its loop alone, alternating them."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in subjects}
    order = list(subjects)
    for _ in range(repeats):
        for name in order:
            gc.collect()
            whole = subjects[name](n)
            times[name].append((whole, LOOP[1] - LOOP[0]))
        order.reverse()
    return {
        name: (statistics.median(w for w, _ in runs), statistics.median(lo for _, lo in runs))
        for name, runs in times.items()
    }


def rss() -> int:
    """The process's resident set size in bytes (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


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


def main() -> None:
    """Run with the command line's sizes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-items", type=int, default=MEMORY_ITEMS)
    args = parser.parse_args()
    os.environ.setdefault("RESUMABLE_PROGRESS", "0")
    with tempfile.TemporaryDirectory() as directory:
        subjects: dict[str, Subject] = {
            "floor: bare `for`": floor,
            "@resumable, MemoryStore": decorated(MemoryStore),
            "@resumable, FileStore": decorated(lambda: FileStore(directory)),
            "@resumable, 50 ms saves every 1,000": decorated(SlowStore, every=1000),
            "with job(), j.advance()": with_job,
        }
        medians = measure(subjects, args.items, args.repeats)
    base, base_loop = medians["floor: bare `for`"]
    print(f"### Per-yield cost, {args.items:,} items, median of {args.repeats}\n")
    print("The whole run includes the job's start and end; the loop is the generator's")
    print("first item to its last, where a yield's cost shows alone.\n")
    print("| subject | ns per yield, whole run | ratio | ns per yield, loop | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (whole, loop) in medians.items():
        print(
            f"| {name} | {whole / args.items * 1e9:.1f} | {whole / base:.2f} "
            f"| {loop / args.items * 1e9:.1f} | {loop / base_loop:.2f} |"
        )
    samples = memory(args.memory_items)
    first = samples[1][1] if len(samples) > 1 else samples[0][1]
    print(f"\n### Resident memory over {args.memory_items:,} yields\n")
    print("| yields | RSS (MiB) | since the first tenth (KiB) |")
    print("| ---: | ---: | ---: |")
    for yields, size in samples:
        print(f"| {yields:,} | {size / 2**20:.1f} | {(size - first) / 1024:+.0f} |")


if __name__ == "__main__":
    main()
