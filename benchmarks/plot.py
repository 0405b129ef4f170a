"""The docs' plot: one panel per section that has one, drawn from a run's figures."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from targets import FILESTORE_TARGETS

MiB = 1024 * 1024
Painter = Callable[[Any, Any], None]
"""Draws one section's figures on a matplotlib Axes."""


def draw(panels: Mapping[str, tuple[Painter, Any]], title: str, path: Path) -> None:
    """Draw each ``(painter, figures)`` of *panels* into one PNG at *path*."""
    if not panels:
        return
    # Imported by name, untyped: only the plot needs matplotlib, and type-checking does not.
    importlib.import_module("matplotlib").use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    columns = 2 if len(panels) > 1 else 1
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(
        rows, columns, figsize=(7 * columns, 4.6 * rows), squeeze=False, layout="constrained"
    )
    cells = [ax for row in axes for ax in row]
    for ax in cells[len(panels) :]:
        ax.set_visible(False)
    for ax, (painter, figures) in zip(cells, panels.values(), strict=False):
        painter(ax, figures)
    figure.suptitle(f"resumable benchmarks: {title}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def per_item(title: str, key: str | None = None) -> Painter:
    """A painter of per-item figures (`measuring.per_item`; under *key* when given)."""

    def paint(ax: Any, figures: dict[str, Any]) -> None:
        data = figures[key] if key else figures
        floor = next(iter(data))
        names = list(data)[::-1]
        values = [data[n]["ns_per_item"] for n in names]
        ratios = [data[n]["ratio"] for n in names]
        colors = [
            "black" if n == floor else "tab:green" if "resumable" in n or "job" in n else "tab:gray"
            for n in names
        ]
        ax.barh(names, values, color=colors)
        ax.set_xscale("log")
        for y, (v, r) in enumerate(zip(values, ratios, strict=True)):
            ax.text(v * 1.15, y, f"{r:,.2f}x", va="center", fontsize=8)
        ax.set_xlim(right=max(values) * 40)
        ax.set_xlabel("time per item, ns (log scale; label: x the floor, in black)")
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)

    return paint


def migration(ax: Any, data: dict[str, Any]) -> None:
    """Time to safety on ``migrating``: a bar per subject and workload, the worst marked."""
    workloads = list(data)
    subjects = list(next(iter(data.values())))
    width = 0.8 / len(subjects)
    for i, subject in enumerate(subjects):
        xs = [w + (i - (len(subjects) - 1) / 2) * width for w in range(len(workloads))]
        cap = data[workloads[0]][subject]["cap_ms"]
        medians = [min(data[w][subject]["latency_ms_median"], cap) for w in workloads]
        worsts = [min(data[w][subject]["latency_ms_worst"], cap) for w in workloads]
        ax.bar(xs, medians, width, label=subject)
        ax.scatter(xs, worsts, marker="_", s=200, color="black", zorder=3)
    for w, workload in enumerate(workloads):
        if workload in FILESTORE_TARGETS:
            median, _ = FILESTORE_TARGETS[workload]
            ax.hlines(median, w - 0.45, w + 0.45, colors="tab:red", linestyles="dashed")
    ax.scatter([], [], marker="_", s=200, color="black", label="worst (capped at the wait)")
    ax.plot([], [], color="tab:red", linestyle="dashed", label="target median, FileStore")
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("ms from `migrating` sent to durable (log)")
    ax.set_title("Time to safety on `migrating` (bar: median)")
    ax.legend(fontsize=7)


def stores(ax: Any, data: dict[str, Any]) -> None:
    """Median save and load per store, side by side."""
    names = list(data)[::-1]
    ys = range(len(names))
    for offset, op, color in ((0.2, "save", "tab:blue"), (-0.2, "load", "tab:orange")):
        values = [data[n][f"{op}_ms_median"] for n in names]
        ax.barh([y + offset for y in ys], values, height=0.4, color=color, label=f"{op} median")
    ax.set_yticks(list(ys), names)
    ax.set_xscale("log")
    ax.set_xlabel("ms per operation (log)")
    ax.set_title("Guarded save and load by store")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7)


def fleet(ax: Any, data: dict[str, Any]) -> None:
    """Items per second against the number of worker processes, one line per store."""
    for store, by_size in data["stores"].items():
        sizes = [int(s) for s in by_size]
        ax.plot(sizes, [by_size[str(s)]["items_per_s"] for s in sizes], marker="o", label=store)
    ceiling = 1 / data["work"]
    ax.axhline(ceiling, color="tab:gray", linestyle="dotted", label="one worker's ceiling")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("worker processes")
    ax.set_ylabel("items/s, all workers together")
    ax.set_title(f"A fleet on one shared store ({data['shards']} shards, {data['cpus']} cores)")
    ax.legend(fontsize=7)


def scale(ax: Any, data: dict[str, Any]) -> None:
    """Time per item and resident memory, million by million."""
    per_item = data["ns_per_item_by_million"]
    ax.plot(range(1, len(per_item) + 1), per_item, marker="o", label="ns per item")
    ax.set_ylim(0, max(per_item) * 1.3)
    ax.set_xlabel("millions of yields")
    ax.set_ylabel("ns per item in that million")
    memory = ax.twinx()
    rss = [b / MiB for b in data["rss_by_million"]]
    memory.plot(range(len(rss)), rss, color="tab:orange", marker=".")
    memory.set_ylim(0, max(rss) * 1.3)
    memory.set_ylabel("resident memory, MiB", color="tab:orange")
    ax.set_title(f"A long run: {data['yields']:,} yields, {data['writes']} writes")


def sizes(ax: Any, data: dict[str, Any]) -> None:
    """Save and load time against the cursor's size, per store."""
    for store, by_size in data.items():
        sizes = sorted(int(s) for s in by_size)
        for what, marker, style in (("save", "o", "-"), ("load", "x", "--")):
            values = [by_size[str(s)][f"{what}_us"] for s in sizes]
            ax.plot(sizes, values, marker=marker, linestyle=style, label=f"{store} {what}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cursor size, bytes")
    ax.set_ylabel("µs (median)")
    ax.set_title("Save and load by cursor size")
    ax.legend(fontsize=7)
