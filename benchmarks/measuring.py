"""What the benchmarks measure with: the order subjects take turns in, figures per item, memory."""

from __future__ import annotations

import os
import resource
import statistics
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


def rounds(
    names: Sequence[str], repeats: int, *, warm_up: bool = True
) -> Iterator[tuple[int, str]]:
    """Each subject once a round, the order flipping every round, so drift hits them alike.

    Yields:
        ``(round, name)``; with *warm_up*, round 0 comes first and is not to be counted (it
        warms imports, caches and the disk), then rounds 1 to *repeats*.
    """
    first = 0 if warm_up else 1
    for repeat in range(first, repeats + 1):
        for name in names if repeat % 2 == 0 else reversed(names):
            yield repeat, name


def rss() -> int:
    """Resident memory of this process in bytes (peak resident memory where /proc is absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")


def per_item(
    seconds: Mapping[str, Sequence[float]], items: Mapping[str, int], floor: str
) -> dict[str, dict[str, Any]]:
    """Each subject's time per item and its ratio to the *floor* subject's.

    Args:
        seconds: Each subject's run times, repetition by repetition.
        items: The items each subject ran per repetition.
        floor: The subject the others are divided by.

    Returns:
        Per subject: ``items``, ``repeats``, the median and least ``ns_per_item``, ``ratio``
        (median over the floor's median) and ``ratio_runs`` (each repetition over the
        floor's run next to it: the spread of the ratio).
    """
    floor_per_item = statistics.median(seconds[floor]) / items[floor]
    results: dict[str, dict[str, Any]] = {}
    for name, runs in seconds.items():
        n = items[name]
        times = [s / n for s in runs]
        results[name] = {
            "items": n,
            "repeats": len(runs),
            "ns_per_item": statistics.median(times) * 1e9,
            "ns_per_item_min": min(times) * 1e9,
            "ratio": statistics.median(times) / floor_per_item,
            "ratio_runs": [
                t / (f / items[floor]) for t, f in zip(times, seconds[floor], strict=True)
            ],
        }
    return results


def per_item_table(results: Mapping[str, Mapping[str, Any]], floor: str = "floor") -> str:
    """Render `per_item`'s results as a markdown table, the ratio headed ``x`` *floor*."""
    lines = [
        f"| subject | items | per item (median) | x {floor} |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['items']:,} | {duration(r['ns_per_item'])} | {r['ratio']:,.2f}x |"
        )
    return "\n".join(lines)


def duration(ns: float) -> str:
    """*ns* nanoseconds in the unit that reads best."""
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"
