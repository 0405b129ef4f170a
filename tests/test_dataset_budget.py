"""Outputs to the default dataset on a pay-per-event run with a maximum total charge (a real
Actor with ``ACTOR_TEST_PAY_PER_EVENT``): the SDK cuts a push to what the budget pays for, and
the job stops saying so, with the rest pending, instead of counting them delivered."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import run_local_actor

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from apify import Actor
    from resumable import resumable

    @resumable(key="export", every=1)
    async def export(*, cursor: int = 0, out):
        while cursor < 8:
            out.push({"n": cursor})
            cursor += 1
            yield cursor
            await asyncio.sleep(0.01)

    async def main():
        async with Actor(exit_process=False):
            outcome = await export()
            print("OUTCOME", outcome.status, outcome.cursor, outcome.outputs, flush=True)

    asyncio.run(main())
    """
)


def run(tmp_path: Path, budget: str) -> subprocess.CompletedProcess[str]:
    return run_local_actor(tmp_path, SCRIPT, ACTOR_MAX_TOTAL_CHARGE_USD=budget)


def items(tmp_path: Path) -> list[int]:
    folder = tmp_path / "storage" / "datasets" / "default"
    return [json.loads(f.read_text())["n"] for f in sorted(folder.glob("0*.json"))]


def test_a_run_out_of_budget_stops_with_the_rest_pending_and_a_resurrection_delivers_it(
    tmp_path: Path,
) -> None:
    """With $5 at $1 an item, the run stores items 0-4, fails with a sentence that names the
    sink, the count and what to do, and its record holds the rest; run again with $20, the
    dataset ends with each of the 8 items once, in order."""
    first = run(tmp_path, "5")
    stored = items(tmp_path)
    record = json.loads((tmp_path / "storage/key_value_stores/default/export").read_text())
    second = run(tmp_path, "20")
    said = r"maximum total charge pays for \d more item\(s\) in DatasetSink"

    assert 0 != first.returncode
    assert re.search(said, first.stderr), first.stderr[-2000:]
    assert "resurrect the run" in first.stderr
    assert [0, 1, 2, 3, 4] == stored
    assert "failed" == record["status"]
    # The record accounts for every item: the dataset's up to its count, the rest pending.
    # When the budget cut a push of several items, the push raised after storing item 4, and
    # the record may still hold it pending: the next run reads the dataset back first.
    delivered = record["outbox"]["delivered"]
    assert delivered in (4, 5)
    assert [{"n": n} for n in range(delivered, record["cursor"])] == record["outbox"]["pending"]
    assert 0 == second.returncode, second.stderr
    assert list(range(8)) == items(tmp_path)
