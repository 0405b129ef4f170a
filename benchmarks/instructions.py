"""Per-item cost of the hot paths in instructions, counted by valgrind (not timed).

    python benchmarks/instructions.py [--items N] [--against DIR] [--only SUBJECTS]

Wall-clock figures move with whatever else the machine does; an instruction count does not.
Each subject of `hot_path.py` runs under ``valgrind --tool=callgrind`` for N and 2N items,
and the difference over N is what one item costs, start-up excluded; each is shown next to
its floor, which drives the same generator without ``resumable``. ``--against DIR`` counts
the same subjects with the package of another checkout (an earlier commit, say) in the same
run, for a before/after ratio: the subjects' code is this checkout's, only the package
differs. The counts run in parallel, one per core: they do not depend on the load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ITEMS = 20_000
FLOORS = {
    "bare": "bare",
    "resumable": "bare",
    "advance": "bare",
    "list": "list",
    "push": "list",
    "plain": "plain",
    "plain-resumable": "plain",
    "plain-advance": "plain",
}
"""Each subject of `hot_path.py`, and the floor it is compared with."""
LABELS = {
    "bare": "bare `async for` (floor)",
    "resumable": "`@resumable`",
    "advance": "`job().advance()` per item",
    "list": "list-append loop (floor with outputs)",
    "push": "`out.push` + yield, sink in memory",
    "plain": "bare `for` (plain floor)",
    "plain-resumable": "`@resumable`, plain generator",
    "plain-advance": "`with job()`, `j.advance()` per item",
}
_COLLECTED = re.compile(r"Collected : (\d+)")


def count(subject: str, items: int, package: Path) -> int:
    """Instructions for one run of *subject* over *items*, with the package at *package*.

    Raises:
        RuntimeError: The subject failed, or valgrind printed no count.
    """
    done = subprocess.run(
        [  # noqa: S607 - valgrind from the PATH, as a user runs it
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(HERE / "hot_path.py"),
            subject,
            str(items),
        ],
        capture_output=True,
        text=True,
        check=False,
        # A fixed hash seed: the same start-up, so the same count, on every run.
        env=os.environ | {"PYTHONPATH": str(package), "PYTHONHASHSEED": "0"},
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        lines = [line for line in done.stderr.splitlines() if not line.startswith("==")]
        raise RuntimeError(f"{subject} failed with {package}: {' '.join(lines[-3:])}")
    return int(found.group(1))


def run(
    items: int = ITEMS, against: Path | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    """Count every subject (and its floor) for *items* and twice as many.

    Args:
        items: N, the smaller run's items.
        against: Another checkout's root, whose package is counted too.
        only: The subjects to count (their floors are added); every one by default.

    Returns:
        ``items``, and per subject its ``floor`` and the instructions per item of each
        checkout (``None`` where the subject failed, with the reason in ``errors``).

    Raises:
        RuntimeError: valgrind is not installed.
    """
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (Debian: apt-get install valgrind)")
    wanted = only or list(FLOORS)
    subjects = [s for s in FLOORS if s in wanted or s in {FLOORS[w] for w in wanted}]
    checkouts = {"this checkout": HERE.parent}
    if against is not None:
        checkouts[str(against)] = against.resolve()
    runs = [
        (subject, name, n)
        for subject in subjects
        for name in (checkouts if FLOORS[subject] != subject else ["this checkout"])
        for n in (items, 2 * items)
    ]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {key: pool.submit(count, key[0], key[2], checkouts[key[1]]) for key in runs}
    per_item: dict[str, dict[str, float | None]] = {s: {} for s in subjects}
    errors: list[str] = []
    for subject, name, n in runs:
        if n != items:
            continue
        try:
            twice, once = futures[subject, name, 2 * n].result(), futures[subject, name, n].result()
        except RuntimeError as error:
            per_item[subject][name] = None
            errors.append(str(error))
        else:
            per_item[subject][name] = (twice - once) / n
    return {
        "items": items,
        "checkouts": list(checkouts),
        "subjects": {s: {"floor": FLOORS[s], "per_item": per_item[s]} for s in subjects},
        "errors": errors,
    }


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table: per item, against the floor, against the other."""
    checkouts: list[str] = results["checkouts"]
    subjects: dict[str, Any] = results["subjects"]
    heading = "| subject | instructions per item | x its floor |"
    rule = "| --- | ---: | ---: |"
    if len(checkouts) > 1:
        heading += f" {checkouts[1]} | x its floor | this / that |"
        rule += " ---: | ---: | ---: |"
    lines = [heading, rule]
    here = "this checkout"
    for subject, r in subjects.items():
        floor = subjects[r["floor"]]["per_item"][here]
        cells = [LABELS[subject], _count(r["per_item"][here]), _ratio(r["per_item"][here], floor)]
        if len(checkouts) > 1 and r["floor"] == subject:
            cells += ["", "", ""]  # a floor runs no package: it is counted once
        elif len(checkouts) > 1:
            there = r["per_item"][checkouts[1]]
            cells += [_count(there), _ratio(there, floor), _ratio(r["per_item"][here], there)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n{error}" for error in results["errors"]]
    return "\n".join(lines)


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "n/a" if value is None or not base else f"{value / base:.2f}x"


def main() -> None:
    """Count each subject here (and in --against) and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--against", type=Path, help="another checkout's root, for before/after")
    parser.add_argument("--only", help=f"comma-separated subjects, of: {', '.join(FLOORS)}")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    if only and set(only) - set(FLOORS):
        parser.error(f"unknown subject(s) {', '.join(sorted(set(only) - set(FLOORS)))}")
    try:
        results = run(args.items, args.against, only)
    except RuntimeError as error:
        sys.exit(str(error))
    print(table(results))


if __name__ == "__main__":
    main()
