"""No asyncio needed: convert a CSV file to JSON Lines with a plain generator that resumes.

    python examples/csv_to_jsonl.py

The job is a plain ``def`` that yields a cursor after each row; calling it runs it to its end
in this thread, while its saves happen on a thread of their own. The cursor is the next row
to convert. The job pushes each converted row into its outbox, which delivers it to the JSON
Lines file together with the cursor after it, so every row lands in the output exactly once,
whenever the process dies. Here a first process is killed (SIGKILL) halfway through; the
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

from resumable import FileStore, JsonLinesSink, Outbox, SyncJobFunction, resumable

ROWS = 500
DIE_AT = 317  # the row during which the first process is killed


# [docs: convert]
def converter(work: Path, die_at: int | None = None) -> SyncJobFunction[[Path], int]:
    """The conversion job, with its state and its output next to the file it converts."""

    @resumable(
        key="csv-to-jsonl",
        store=FileStore(work / "state"),
        sink=JsonLinesSink(work / "out.jsonl"),
        every=50,
    )
    def convert(
        source: Path, *, cursor: int = 0, out: Outbox[dict[str, str]] = Outbox.GIVEN
    ) -> Iterator[int]:
        with source.open(newline="") as rows:
            for number, row in enumerate(csv.DictReader(rows)):
                if number < cursor:
                    continue
                if number == die_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                out.push(row)  # reaches out.jsonl once, with the cursor after it
                yield number + 1

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
        converter(work, die_at=DIE_AT)(work / "in.csv")
        return
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        make_csv(work / "in.csv")
        doomed = subprocess.run(  # noqa: S603 - runs this very script
            [sys.executable, __file__, "--doomed", str(work)], check=False, timeout=60
        )
        print(f"first run: killed by signal {-doomed.returncode} during row {DIE_AT}")
        outcome = converter(work)(work / "in.csv")
        resumed = outcome.resumed_from or 0
        ids = [json.loads(line)["id"] for line in (work / "out.jsonl").read_text().splitlines()]
        print(f"second run: resumed at row {resumed}, {outcome.status} at row {outcome.cursor}")
        assert [str(i) for i in range(ROWS)] == ids
        print(f"{len(ids)} of {ROWS} rows in the output, each exactly once")


if __name__ == "__main__":
    main()
