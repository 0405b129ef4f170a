"""Run every benchmark, write one report with the machine and the versions, and draw its plot.

Run from the repository root, in an environment with ``pip install -e '.[bench]'``::

    python benchmarks/run.py            # every section: under ~10 minutes on 2 cores
    python benchmarks/run.py --quick    # rougher figures, under a minute
    python benchmarks/run.py --full     # more repetitions, items and trials
    python benchmarks/run.py --smoke    # the smallest sizes: does every benchmark run?
    python benchmarks/run.py --only cost,outputs --no-plot
    python benchmarks/run.py --docs     # also rewrite docs/performance.md and its plot

or ``nox -s bench -- --quick``. The sections are `sections.py`'s (``--list`` names them).
Every figure is a median over repetitions or trials, and every ratio compares subjects
measured side by side in the same run. The report is printed and also written, with the
raw figures as JSON, to ``benchmarks/out/``; the plot goes to
``benchmarks/out/performance.png`` unless ``--plot`` says where. ``--docs`` runs every
section (so it needs every tool and server they use), puts the plot in ``docs/images/``
and the report into ``docs/performance.md`` between its two ``benchmark results``
comments, with a digest of the benchmarks that measured it (`freshness.py`), which the
docs' build checks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import freshness  # noqa: E402 - the benchmarks beside this file
import machine  # noqa: E402
import plot  # noqa: E402
import targets  # noqa: E402
from sections import BY_NAME, PRESETS, SECTIONS, Section  # noqa: E402

DOCS = ROOT / "docs" / "images"
PAGE = ROOT / "docs" / "performance.md"
BEGIN = "<!-- benchmark results: begin"
END = "<!-- benchmark results: end -->"
DOCS_NEEDS = ("dbos", "matplotlib")
"""Packages of the ``bench`` extra that ``--docs`` requires: the page shows what they draw."""


def measure(sections: list[Section], preset: str) -> dict[str, Any]:
    """Run *sections* with their *preset* sizes; return their figures and their durations."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for section in sections:
        began = time.perf_counter()
        print(f"running {section.name} ...", file=sys.stderr, flush=True)
        sizes = section.sizes[preset]
        assert sizes is not None
        results[section.name] = section.run(sizes)
        seconds[section.name] = time.perf_counter() - began
        print(f"  {section.name}: {seconds[section.name]:.0f} s", file=sys.stderr, flush=True)
    return {"figures": results, "seconds": seconds}


def report(
    run: dict[str, Any], sections: list[Section], left_out: dict[str, str], command: str
) -> str:
    """The whole report as markdown: how and where, each section's table, the targets."""
    minutes = sum(run["seconds"].values()) / 60
    parts = [
        f"Measured with `{command}` ({minutes:.0f} min), on:",
        "",
        machine.table(run["machine"], run["load_after"]),
        "",
    ]
    figures = run["figures"]
    checks: list[targets.Check] = []
    for section in sections:
        parts += [
            f"### {section.heading}",
            "",
            section.about,
            "",
            section.table(figures[section.name]),
            "",
        ]
        if section.checks is not None:
            checks += section.checks(figures[section.name])
    if left_out:
        parts += ["### Left out of this run", ""]
        parts += [f"- {name}: {why}" for name, why in left_out.items()]
        parts.append("")
    if checks:
        parts += ["### Targets", "", targets.table(checks), ""]
    return "\n".join(parts)


def panels(figures: dict[str, Any], sections: list[Section]) -> dict[str, tuple[plot.Painter, Any]]:
    """The plot's panels: each section that ran and has a painter, with its figures."""
    return {
        s.name: (s.painter, figures[s.name])
        for s in sections
        if s.painter is not None and s.name in figures
    }


def with_results(page: str, report: str) -> str:
    """Return *page* with *report* in place of what stands between its results comments."""
    begin = page.index(BEGIN)
    head_end = page.index("\n", begin) + 1
    end = page.index(END, head_end)
    return page[:head_end] + report.strip("\n") + "\n" + page[end:]


def _finite(value: Any) -> Any:
    """*value* with every infinite float (a save that never finished) as ``None``, for JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer items and trials (< 1 min)")
    size.add_argument("--full", action="store_true", help="more items and trials")
    size.add_argument(
        "--smoke", action="store_true", help="the smallest sizes (figures mean nothing)"
    )
    parser.add_argument("--only", help="comma-separated sections to run (see --list)")
    parser.add_argument("--list", action="store_true", help="name the sections and stop")
    parser.add_argument("--plot", type=Path, default=HERE / "out" / "performance.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot (no matplotlib)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where results go")
    parser.add_argument(
        "--docs",
        action="store_true",
        help=f"run every section and rewrite {PAGE.relative_to(ROOT)} and the plot in "
        f"{DOCS.relative_to(ROOT)}/",
    )
    args = parser.parse_args()
    if args.list:
        for section in SECTIONS:
            print(f"{section.name}: {section.heading}")
        sys.exit(0)
    args.preset = next((p for p in PRESETS if getattr(args, p, False)), "default")
    if args.only:
        args.only = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(args.only) - set(BY_NAME))
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; see --list")
    if args.docs:
        if args.only or args.smoke or args.no_plot:
            parser.error(
                "--docs shows one run of every section: leave out --only, --smoke and --no-plot"
            )
        lacking = [p for p in DOCS_NEEDS if importlib.util.find_spec(p) is None]
        if lacking:
            parser.error(f"--docs needs {', '.join(lacking)}: pip install -e '.[bench]'")
        args.plot = DOCS / "performance.png"
    return args


def main() -> None:
    """Parse the command line, run, report, plot, and update the docs if asked."""
    args = _arguments()
    chosen = [s for s in SECTIONS if not args.only or s.name in args.only]
    left_out: dict[str, str] = {}
    for section in chosen:
        why = section.missing()
        if why is None and section.sizes[args.preset] is None:
            why = f"not part of --{args.preset}"
        if why is not None:
            left_out[section.name] = why
    if args.docs and left_out:
        sys.exit(
            "--docs needs every section: " + "; ".join(f"{n}: {w}" for n, w in left_out.items())
        )
    sections = [s for s in chosen if s.name not in left_out]
    stamp = freshness.stamp()  # the benchmarks as they are when the run starts
    described = machine.describe()
    run = measure(sections, args.preset)
    run |= {"machine": described, "load_after": machine.load(), "preset": args.preset}
    command = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    text = report(run, sections, left_out, command)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(_finite(run), indent=1) + "\n")
    if not args.no_plot:
        plot.draw(panels(run["figures"], sections), machine.line(described), args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.docs:
        # In the page itself, so that it reads whole wherever its Markdown is shown.
        PAGE.write_text(with_results(PAGE.read_text(), f"{stamp}\n{text}"))
        print(f"updated {PAGE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
