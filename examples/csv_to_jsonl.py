"""No asyncio needed: convert a CSV file to JSON Lines with a plain generator that resumes.

    python examples/csv_to_jsonl.py

The job is a plain ``def`` that yields a cursor after each row; calling it runs it to its end
in this thread, while its saves happen on a thread of their own. The cursor is a pair: the
next row to convert, and how many bytes of output hold the rows before it. A run that resumes
first cuts off whatever a crashed run wrote after its last saved cursor, so every row lands in
the output exactly once. Here a first process is killed (SIGKILL) halfway through; the
second run picks up where the first one's last save left it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from resumable import FileStore, SyncJobFunction, resumable

ROWS = 500
DIE_AT = 317  # the row during which the first process is killed


# [docs: convert]
def converter(
    work: Path, die_at: int | None = None
) -> SyncJobFunction[[Path, Path], tuple[int, int]]:
    """The conversion job, with its state next to the files it converts."""

    @resumable(key="csv-to-jsonl", store=FileStore(work / "state"), every=50)
    def convert(
        source: Path, target: Path, *, cursor: tuple[int, int] = (0, 0)
    ) -> Iterator[tuple[int, int]]:
        start, size = cursor
        with source.open(newline="") as rows, target.open("ab") as out:
            out.truncate(size)  # what a crashed run wrote after its last saved cursor
            for number, row in enumerate(csv.DictReader(rows)):
                if number < start:
                    continue
                if number == die_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                out.write(json.dumps(row).encode() + b"\n")
                out.flush()
                yield number + 1, out.tell()

    return convert


# [docs: end]


def make_csv(path: Path) -> None:
    """Write the input: an id, a name and an amount a row."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "name", "amount"])
        for i in range(ROWS):
            writer.writerow([i, f"customer {i}", f"{i * 7 % 100}.{i % 100:02d}"])


def main() -> None:
    """Run the conversion twice: the first process dies, the second finishes."""
    if len(sys.argv) == 3 and sys.argv[1] == "--doomed":
        work = Path(sys.argv[2])
        converter(work, die_at=DIE_AT)(work / "in.csv", work / "out.jsonl")
        return
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        make_csv(work / "in.csv")
        doomed = subprocess.run(  # noqa: S603 - runs this very script
            [sys.executable, __file__, "--doomed", str(work)], check=False, timeout=60
        )
        print(f"first run: killed by signal {-doomed.returncode} during row {DIE_AT}")
        outcome = converter(work)(work / "in.csv", work / "out.jsonl")
        resumed = outcome.resumed_from[0] if outcome.resumed_from else 0
        ids = [json.loads(line)["id"] for line in (work / "out.jsonl").read_text().splitlines()]
        print(f"second run: resumed at row {resumed}, {outcome.status} at row {outcome.cursor[0]}")
        assert [str(i) for i in range(ROWS)] == ids
        print(f"{len(ids)} of {ROWS} rows in the output, each exactly once")


if __name__ == "__main__":
    main()
