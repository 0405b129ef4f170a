"""Run every benchmark, print one markdown report with the targets, and draw the docs' plot.

Run from the repository root, in an environment with ``pip install -e '.[bench]'``::

    python benchmarks/run.py            # about 2 minutes on 2 cores
    python benchmarks/run.py --quick    # a smaller, rougher pass (about 25 s)
    python benchmarks/run.py --full     # more repetitions, items and trials (about 5 minutes)
    python benchmarks/run.py --only cost,scale --no-plot
    python benchmarks/run.py --docs     # also update the docs (plot and report)

or ``nox -s bench -- --quick``. Every figure is a median over repetitions or trials, and
every ratio compares subjects measured alternately in the same run. The report is printed and
also written, with the raw figures as JSON, to ``benchmarks/out/``; the plot goes to
``benchmarks/out/performance.png`` unless ``--plot`` says where; ``--docs`` puts the plot
in ``docs/images/`` and the report into ``docs/performance.md``, between its two
``benchmark results`` comments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import concurrency  # noqa: E402 - the benchmarks beside this file
import cost  # noqa: E402
import migration  # noqa: E402
import scale  # noqa: E402

DOCS = ROOT / "docs" / "images"
PAGE = ROOT / "docs" / "performance.md"
BEGIN = "<!-- benchmark results: begin"
END = "<!-- benchmark results: end -->"
SECTIONS = ("cost", "migration", "scale", "sizes", "concurrency")

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "cost": {"items": 200_000, "repeats": 3, "dbos_items": 100},
        "migration": {"trials": 5, "cap": 1.0},
        "scale": {"yields": 2_000_000},
        "sizes": {"saves": 10},
        "concurrency": {"items": 50_000, "repeats": 3},
    },
    "default": {
        "cost": {"items": 1_000_000, "repeats": 7, "dbos_items": 1_000},
        "migration": {"trials": 20, "cap": 2.0},
        "scale": {"yields": 10_000_000},
        "sizes": {"saves": 30},
        "concurrency": {"items": 200_000, "repeats": 5},
    },
    "full": {
        "cost": {"items": 1_000_000, "repeats": 15, "dbos_items": 2_000},
        "migration": {"trials": 40, "cap": 3.0},
        "scale": {"yields": 10_000_000},
        "sizes": {"saves": 100},
        "concurrency": {"items": 200_000, "repeats": 11},
    },
}

COST_TARGET = 1.3
CONCURRENCY_TARGET = 1.5
FILESTORE_TARGETS = {  # workload: (median, worst) in ms
    "idle": (3.0, 15.0),
    "saturated": (3.0, 15.0),
    "CPU-bound": (12.0, 50.0),
}
APIFY_WORST_TARGET = 50.0
MiB = 1024 * 1024
DRIFT_TARGET = 0.15


def measure(sections: list[str], preset: dict[str, Any]) -> dict[str, Any]:
    """Run the chosen *sections* with the *preset*'s sizes; return their raw results."""
    runners: dict[str, Callable[[dict[str, Any]], Any]] = {
        "cost": lambda p: cost.run(p["items"], p["repeats"], p["dbos_items"] or None),
        "migration": lambda p: migration.run(p["trials"], cap=p["cap"]),
        "scale": lambda p: scale.long_run(p["yields"]),
        "sizes": lambda p: {
            store: {str(size): r for size, r in by_size.items()}
            for store, by_size in scale.sizes(p["saves"]).items()
        },
        "concurrency": lambda p: concurrency.run(p["items"], p["repeats"]),
    }
    results: dict[str, Any] = {}
    for section in sections:
        began = time.perf_counter()
        print(f"running {section} ...", file=sys.stderr, flush=True)
        results[section] = runners[section](preset[section])
        print(f"  {section}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return results


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target the issue set, what was measured, and whether it is met."""
    checks: list[tuple[str, str, bool]] = []
    if "cost" in results:
        for name in ("@resumable, MemoryStore", "@resumable, FileStore"):
            ratio = results["cost"][name]["ratio"]
            checks.append((f"{name}: <= {COST_TARGET}x the floor", f"{ratio:.2f}x", ratio <= 1.3))
    for workload, by_subject in results.get("migration", {}).items():
        checks += _migration_targets(workload, by_subject)
    if "scale" in results:
        r = results["scale"]
        growth = r["rss_growth_bytes"]
        checks.append(
            ("memory growth over the run < 1 MiB", f"{growth / 1024:+.0f} KiB", growth < MiB)
        )
        drift = r["cost_drift_after_first"]
        checks.append(
            (
                f"cost per item constant: each million after the first within {DRIFT_TARGET:.0%}",
                f"max/min {drift:.2f}x",
                drift <= 1 + DRIFT_TARGET,
            )
        )
        writes, bound = r["writes"], r["writes_bound"]
        checks.append(("writes within the policy", f"{writes} <= {bound}", writes <= bound))
    if "concurrency" in results:
        ratio = results["concurrency"]["ratio"]
        target = f"`concurrently` <= {CONCURRENCY_TARGET}x a bounded TaskGroup"
        checks.append((target, f"{ratio:.2f}x", ratio <= CONCURRENCY_TARGET))
    return checks


def _migration_targets(workload: str, by_subject: dict[str, Any]) -> list[tuple[str, str, bool]]:
    checks: list[tuple[str, str, bool]] = []
    file = by_subject.get("@resumable, FileStore")
    if file is not None and workload in FILESTORE_TARGETS:
        median, worst = FILESTORE_TARGETS[workload]
        got = (file["latency_ms_median"], file["latency_ms_worst"])
        checks.append(
            (
                f"{workload}, FileStore: median <= {median:g} ms, worst <= {worst:g} ms",
                f"{got[0]:.1f} ms, {got[1]:.1f} ms",
                got[0] <= median and got[1] <= worst,
            )
        )
    apify = by_subject.get("@resumable, ApifyStore")
    sdk = by_subject.get("Actor.use_state() auto-save")
    if apify is not None and sdk is not None:
        ours, theirs = apify["latency_ms_median"], sdk["latency_ms_median"]
        worst = apify["latency_ms_worst"]
        checks.append(
            (
                f"{workload}, ApifyStore: median <= the SDK's, worst <= {APIFY_WORST_TARGET:g} ms",
                f"{_ms(ours, apify)} vs {_ms(theirs, sdk)}, worst {_ms(worst, apify)}",
                ours <= theirs and worst <= APIFY_WORST_TARGET,
            )
        )
    ours_only = {n: r for n, r in by_subject.items() if n.startswith("@resumable")}
    if ours_only:
        after_save = max(r["started_after_listener_worst"] for r in ours_only.values())
        behind = max(r["stale_by_worst"] for r in ours_only.values())
        after_received = max(r["started_after_received_worst"] for r in ours_only.values())
        checks.append(
            (
                f"{workload}, @resumable: 0 items started once saving began, saved cursor 0 behind",
                f"{after_save:g} items, {behind:g} behind (worst of both stores)",
                after_save == 0 and behind == 0,
            )
        )
        checks.append(
            (
                f"{workload}, @resumable: 0 items started after the SDK received `migrating`",
                f"{after_received:g} (worst of both stores)",
                after_received == 0,
            )
        )
    return checks


def _ms(value: float, result: dict[str, Any]) -> str:
    return migration.format_ms(value, result["cap_ms"])


def machine() -> str:
    """One line that says where and with what the figures were measured."""
    versions = []
    for package in ("apify", "crawlee", "dbos"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        + ", ".join(versions)
        + f"; {datetime.now(UTC):%Y-%m-%d}"
    )


def report(results: dict[str, Any], command: str) -> str:
    """The whole report as markdown: machine, command, each section's table, the targets."""
    parts = [f"Measured with `{command}` ({machine()}).", ""]
    if "cost" in results:
        items = results["cost"]["floor"]["items"]
        parts += [f"### Cost per item ({items:,} items)", "", cost.table(results["cost"]), ""]
    if "migration" in results:
        parts += [
            "### Time to safety on `migrating`",
            "",
            (
                "From the message leaving the stand-in to the cursor being durable; the "
                "breakdown is in ms since the message left."
            ),
            "",
            migration.table(results["migration"]),
            "",
        ]
    if "scale" in results:
        parts += ["### A long run", "", scale.long_run_table(results["scale"]), ""]
    if "sizes" in results:
        by_size = {
            store: {int(size): r for size, r in sizes.items()}
            for store, sizes in results["sizes"].items()
        }
        parts += ["### Save and load time by cursor size", "", scale.sizes_table(by_size), ""]
    if "concurrency" in results:
        r = results["concurrency"]
        parts += [
            "### `concurrently` against a bounded TaskGroup",
            "",
            "| subject | per item (median) |",
            "| --- | ---: |",
            f"| `concurrently` | {r['concurrently_us_per_item']:.2f} µs |",
            f"| `TaskGroup` + `Semaphore` | {r['taskgroup_us_per_item']:.2f} µs |",
            f"| ratio | {r['ratio']:.2f}x |",
            "",
        ]
    checks = targets(results)
    if checks:
        parts += ["### Targets", "", "| target | measured | met |", "| --- | --- | :---: |"]
        parts += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in checks]
        parts.append("")
    return "\n".join(parts)


def plot(results: dict[str, Any], path: Path) -> None:
    """Draw the sections that ran into one PNG at *path*."""
    # Imported by name, untyped: only the plot needs matplotlib, and type-checking does not.
    importlib.import_module("matplotlib").use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    painters: dict[str, Callable[[Any, Any], None]] = {
        "cost": _plot_cost,
        "migration": _plot_migration,
        "scale": _plot_scale,
        "sizes": _plot_sizes,
    }
    panels = [s for s in painters if s in results]
    if not panels:
        return
    columns = 2 if len(panels) > 1 else 1
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.6 * rows), squeeze=False)
    cells = [ax for row in axes for ax in row]
    for ax in cells[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(cells, panels, strict=False):
        painters[panel](ax, results[panel])
    figure.suptitle(f"resumable benchmarks: {machine()}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_cost(ax: Any, data: dict[str, Any]) -> None:
    names = list(data)[::-1]
    values = [data[n]["ns_per_item"] for n in names]
    colors = [
        "black" if n == "floor" else "tab:green" if n.startswith(("@", "job")) else "tab:gray"
        for n in names
    ]
    ax.barh(names, values, color=colors)
    ax.set_xscale("log")
    for y, (n, v) in enumerate(zip(names, values, strict=True)):
        ax.text(v * 1.15, y, f"{data[n]['ratio']:,.2f}x", va="center", fontsize=8)
    ax.set_xlim(right=max(values) * 40)
    ax.set_xlabel("time per item, ns (log scale; label: x the floor)")
    ax.set_title("Cost per item")
    ax.tick_params(axis="y", labelsize=8)


def _plot_migration(ax: Any, data: dict[str, Any]) -> None:
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


def _plot_scale(ax: Any, data: dict[str, Any]) -> None:
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


def _plot_sizes(ax: Any, data: dict[str, Any]) -> None:
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


def _finite(value: Any) -> Any:
    """*value* with every infinite float (a save that never finished) as ``None``, for JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def main() -> None:
    """Parse the command line, run, report, plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer items and trials (~25 s)")
    size.add_argument("--full", action="store_true", help="more items and trials (~5 min)")
    parser.add_argument(
        "--only", help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--plot", type=Path, default=HERE / "out" / "performance.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot (no matplotlib)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where results go")
    parser.add_argument(
        "--docs",
        action="store_true",
        help=f"also update the docs: the plot in {DOCS.relative_to(ROOT)}/, the report in "
        f"{PAGE.relative_to(ROOT)}",
    )
    args = parser.parse_args()
    if args.docs:
        args.plot = DOCS / "performance.png"
    sections = list(SECTIONS)
    if args.only:
        sections = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    preset = PRESETS["quick" if args.quick else "full" if args.full else "default"]
    began = time.perf_counter()
    results = measure(sections, preset)
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    text = report(results, command.strip())
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(_finite(results), indent=1) + "\n")
    if args.docs:
        # In the page itself, so that it reads whole wherever its Markdown is shown.
        PAGE.write_text(with_results(PAGE.read_text(), text))
    if not args.no_plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    print(f"done in {time.perf_counter() - began:.0f} s", file=sys.stderr)


def with_results(page: str, report: str) -> str:
    """Return *page* with *report* in place of what stands between its results comments."""
    begin = page.index(BEGIN)
    head_end = page.index("\n", begin) + 1
    end = page.index(END, head_end)
    return page[:head_end] + report.strip("\n") + "\n" + page[end:]


if __name__ == "__main__":
    main()
