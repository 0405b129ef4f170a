"""Scale: memory, writes and cost per item over a long run; save and load time by cursor size.

``long_run`` drives one ``@resumable`` job (``FileStore``, ``every=100_000``, ``interval=1``)
through 10,000,000 yields and samples, every million, the time per item since the previous
sample, the process's resident memory (``/proc/self/statm``) and the count of memory blocks
Python has allocated (``sys.getallocatedblocks``). Flat memory means growth under 1 MiB from
the first million on; bounded writes means at most one claim, one write per ``every`` yields,
one per ``interval`` seconds and the final one.

``sizes`` saves and loads cursors of 10 B to 100 KB (a string of that many characters) on
``MemoryStore``, ``FileStore`` and ``ApifyStore`` on local storage: a save is ``Job.save()``
(serialize, check the owner, write; fsync on the file stores), a load is what a job's start
does before its claim (read the record, parse it, structure the cursor).

Run: ``python benchmarks/scale.py [--yields N] [--saves R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measuring import rss  # noqa: E402 - beside this file

from resumable import FileStore, MemoryStore, Store, job, resumable  # noqa: E402
from resumable._codec import Codec, make_converter  # noqa: E402

YIELDS = 10_000_000
SAMPLE_EVERY = 1_000_000
EVERY = 100_000
INTERVAL = 1.0
SIZES = (10, 100, 1_000, 10_000, 100_000)
MiB = 1024 * 1024


async def _long_run(yields: int, directory: Path) -> dict[str, Any]:
    samples: list[tuple[int, float, int, int]] = []

    def sample(done: int) -> None:
        samples.append((done, time.perf_counter(), rss(), sys.getallocatedblocks()))

    @resumable(key="bench-scale", store=FileStore(directory), every=EVERY, interval=INTERVAL)
    async def long(n: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for start in range(cursor, n, SAMPLE_EVERY):
            sample(start)
            for i in range(start, min(start + SAMPLE_EVERY, n)):
                yield i + 1
        sample(n)

    gc.collect()
    began = time.perf_counter()
    outcome = await long(yields)
    seconds = time.perf_counter() - began
    assert outcome.cursor == yields
    per_item = [
        (t1 - t0) / (n1 - n0) * 1e9
        for (n0, t0, _, _), (n1, t1, _, _) in itertools.pairwise(samples)
    ]
    steady = samples[1] if len(samples) > 2 else samples[0]
    bound = 1 + -(-yields // EVERY) + int(seconds // INTERVAL) + 1 + 1
    return {
        "yields": yields,
        "seconds": seconds,
        "ns_per_item_by_million": per_item,
        "cost_drift": max(per_item) / min(per_item),
        # The first million also pays for warming up (the claim, the first checks).
        "cost_drift_after_first": max(per_item[1:] or per_item) / min(per_item[1:] or per_item),
        "cost_last_over_first": per_item[-1] / per_item[0],
        "rss_growth_bytes": samples[-1][2] - steady[2],
        "rss_growth_from_start_bytes": samples[-1][2] - samples[0][2],
        "blocks_growth": samples[-1][3] - steady[3],
        "rss_by_million": [s[2] for s in samples],
        "writes": outcome.saves,
        "writes_bound": bound,
        "every": EVERY,
        "interval": INTERVAL,
    }


def long_run(yields: int = YIELDS) -> dict[str, Any]:
    """Drive one job through *yields* cursors and sample its cost and memory every million."""
    directory = Path(tempfile.mkdtemp(prefix="resumable-bench-scale-"))
    try:
        return asyncio.run(_long_run(yields, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _sizes(saves: int, directory: Path) -> dict[str, dict[int, dict[str, float]]]:
    from resumable.apify import ApifyStore  # noqa: PLC0415 - the Apify extra, only here

    stores: dict[str, Callable[[], Store]] = {
        "MemoryStore": MemoryStore,
        "FileStore": lambda: FileStore(directory / "files"),
        "ApifyStore (local)": lambda: ApifyStore.local(directory / "storage"),
    }
    results: dict[str, dict[int, dict[str, float]]] = {name: {} for name in stores}
    for name, make in stores.items():
        store = make()
        for size in SIZES:
            key = f"bench-size-{size}"
            save_times: list[float] = []
            async with job(
                key, cursor="", store=store, warn_size=2 * size + 1024, max_size=4 * size + 4096
            ) as j:
                for r in range(saves):
                    j.advance(f"{r:08d}".ljust(size, "x"))
                    began = time.perf_counter()
                    await j.save()
                    save_times.append(time.perf_counter() - began)
            codec: Codec[str] = Codec(key, store, str, make_converter())
            load_times: list[float] = []
            data: bytes | None = None
            for _ in range(saves):
                began = time.perf_counter()
                data = await store.load(key)
                assert data is not None
                record = codec.decode(data)
                load_times.append(time.perf_counter() - began)
            assert len(record.cursor) == size
            results[name][size] = {
                "save_us": statistics.median(save_times) * 1e6,
                "save_us_worst": max(save_times) * 1e6,
                "load_us": statistics.median(load_times) * 1e6,
                "bytes": len(data or b""),
            }
    return results


def sizes(saves: int = 50) -> dict[str, dict[int, dict[str, float]]]:
    """Median save and load time per store and cursor size, over *saves* of each."""
    directory = Path(tempfile.mkdtemp(prefix="resumable-bench-sizes-"))
    try:
        return asyncio.run(_sizes(saves, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def long_run_table(r: dict[str, Any]) -> str:
    """Render a `long_run` result as a markdown table."""
    per_item = r["ns_per_item_by_million"]
    rows = [
        ("yields", f"{r['yields']:,} in {r['seconds']:.1f} s"),
        (
            "cost per item, each million",
            (
                f"{min(per_item):.0f} to {max(per_item):.0f} ns (last/first "
                f"{r['cost_last_over_first']:.2f}x, max/min {r['cost_drift']:.2f}x)"
            ),
        ),
        (
            "memory growth after the first million",
            (
                f"{r['rss_growth_bytes'] / 1024:+.0f} KiB resident, "
                f"{r['blocks_growth']:+,} Python blocks"
            ),
        ),
        (
            "writes",
            (
                f"{r['writes']} (policy bound {r['writes_bound']}: every={r['every']:,}, "
                f"interval={r['interval']:g} s, claim and final)"
            ),
        ),
    ]
    lines = ["| measure | value |", "| --- | --- |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def sizes_table(results: dict[str, dict[int, dict[str, float]]]) -> str:
    """Render a `sizes` result as a markdown table: save / load time per store and size."""
    names = list(results)
    lines = [
        "| cursor size | " + " | ".join(f"{n} save / load" for n in names) + " |",
        "| ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for size in SIZES:
        cells = [
            f"{results[n][size]['save_us']:,.0f} / {results[n][size]['load_us']:,.0f} µs"
            for n in names
        ]
        lines.append(f"| {_bytes(size)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bytes(size: int) -> str:
    return f"{size // 1000} KB" if size >= 1000 else f"{size} B"


def main() -> None:
    """Run both measurements with the command line's sizes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--yields", type=int, default=YIELDS)
    parser.add_argument("--saves", type=int, default=50)
    args = parser.parse_args()
    print(long_run_table(long_run(args.yields)))
    print()
    print(sizes_table(sizes(args.saves)))


if __name__ == "__main__":
    main()
