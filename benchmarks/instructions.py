"""Per-item cost of the hot path in instructions, counted by valgrind (not timed).

    python benchmarks/instructions.py [--items N] [--against DIR]

Wall-clock figures move with whatever else the machine does; an instruction count does not.
Each subject of `hot_path.py` runs under ``valgrind --tool=callgrind`` for N and 2N items,
and the difference over N is what one item costs, start-up excluded. ``--against DIR``
counts the same subjects with the package of another checkout (an earlier commit, say)
in the same run, for a before/after ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBJECTS = ("bare", "resumable", "advance")
_COLLECTED = re.compile(r"Collected : (\d+)")


def count(subject: str, items: int, package: Path) -> int:
    """Instructions for one run of *subject* over *items*, with the package at *package*."""
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
        check=True,
        env=os.environ | {"PYTHONPATH": str(package)},
    )
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count: {done.stderr[-500:]}")
    return int(found.group(1))


def per_item(subject: str, items: int, package: Path) -> float:
    """Instructions one item costs: the count for 2N items less the count for N, over N."""
    return (count(subject, 2 * items, package) - count(subject, items, package)) / items


def main() -> None:
    """Count each subject here (and in --against) and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--against", type=Path, help="another checkout's root, for before/after")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    checkouts = {"this checkout": HERE.parent}
    if args.against is not None:
        checkouts = {f"{args.against}": args.against.resolve(), **checkouts}
    floor = per_item("bare", args.items, HERE.parent)
    print("| subject | checkout | instructions per item | x bare async for |")
    print("| --- | --- | ---: | ---: |")
    print(f"| bare async for | - | {floor:,.0f} | 1.00x |")
    for subject in SUBJECTS[1:]:
        for name, root in checkouts.items():
            cost = per_item(subject, args.items, root)
            print(f"| {subject} | {name} | {cost:,.0f} | {cost / floor:.2f}x |")


if __name__ == "__main__":
    main()
