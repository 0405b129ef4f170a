"""`resumable.apify.charge` inside a `@resumable` job, in a real Actor with
``ACTOR_TEST_PAY_PER_EVENT``: each item's charge made once across SIGKILLs on either side of
the charge, and never for work that no record holds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import charging_log, run_local_actor

pytestmark = pytest.mark.slow

ITEMS = 12

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from apify import Actor
    from resumable import resumable
    from resumable.apify import charge
    from resumable.apify._charges import Ledger

    when, at = sys.argv[1], int(sys.argv[2])  # SIGKILL "before"/"after" the at-th charge made
    made = 0
    real_make = Ledger._make

    async def make(self, name, count, key, deadline):
        global made
        made += 1
        if when == "before" and made == at:
            os.kill(os.getpid(), signal.SIGKILL)
        result = await real_make(self, name, count, key, deadline)
        if when == "after" and made == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    Ledger._make = make

    @resumable(key="items", every=1)
    async def items(*, cursor: int = 0):
        while cursor < %(items)d:
            await charge("item")
            cursor += 1
            yield cursor
            await asyncio.sleep(0.01)  # the writer saves each cursor, and makes its charge
        await charge("item", count=2)  # after the last cursor: the completed record holds it

    async def main():
        async with Actor(exit_process=False):
            outcome = await items()
            print("OUTCOME", outcome.status, outcome.cursor, flush=True)

    asyncio.run(main())
    """
) % {"items": ITEMS}


def run(tmp_path: Path, when: str, at: int) -> subprocess.CompletedProcess[str]:
    return run_local_actor(tmp_path, SCRIPT, when, str(at))


def charged(tmp_path: Path) -> list[tuple[int, str]]:
    return [(int(e["charged_count"]), str(e["idempotency_key"])) for e in charging_log(tmp_path)]


@pytest.mark.parametrize("when", ["before", "after"])
def test_each_charge_is_made_once_across_kills_on_either_side_of_it(
    tmp_path: Path, when: str
) -> None:
    """Killed as the 4th and then the 8th charge is made (before the SDK is asked, or after
    it answered and before any record says so), the runs that follow make each item's charge
    once: a record's pending charges are made by the next run, or found made in the run's
    counts and not made again."""
    first = run(tmp_path, when, 4)
    second = run(tmp_path, when, 8 - 4 + 1 if when == "before" else 8 - 4)
    third = run(tmp_path, "never", 0)
    made = charged(tmp_path)

    assert -9 == first.returncode, first.stderr
    assert -9 == second.returncode, second.stderr
    assert 0 == third.returncode, third.stderr
    assert f"OUTCOME completed {ITEMS}" in third.stdout
    assert ITEMS + 2 == sum(count for count, _ in made), made
    assert len(made) == len({key for _, key in made}), made
    assert all(key.startswith("resumable-") for _, key in made)
    if when == "after":
        assert "had been made before the restart; not charging them again" in second.stderr


def test_charges_of_work_no_record_holds_are_not_made(tmp_path: Path) -> None:
    """A run killed as its first charge is made leaves a record at cursor 0 or 1: what the
    next run charges follows from where it resumed, and nothing is charged twice."""
    first = run(tmp_path, "before", 1)
    second = run(tmp_path, "never", 0)
    made = charged(tmp_path)

    assert -9 == first.returncode, first.stderr
    assert 0 == second.returncode, second.stderr
    assert [] != made
    assert ITEMS + 2 == sum(count for count, _ in made), made


def test_a_record_with_charges_is_refused_where_nothing_can_make_them(tmp_path: Path) -> None:
    """A job resumed from a record that holds charges still to be made, in a program that
    does not import `resumable.apify`, stops at its start with a sentence that says what to
    import; the record is left as it was."""
    record = {
        "resumable": 1, "key": "items", "version": 1, "status": "running", "seq": 2,
        "generation": 1, "owner": "earlier", "updated_at": "2026-01-01T00:00:00+00:00",
        "cursor": 3, "charges": {"item": {"charged": 2, "pending": [["earlier:3", 1]]}},
    }  # fmt: skip
    state = tmp_path / "state"
    state.mkdir()
    (state / "items.json").write_text(json.dumps(record))
    script = textwrap.dedent(
        """
        import asyncio, sys
        from resumable import FileStore, ResumableError, resumable

        @resumable(key="items", store=FileStore(sys.argv[1]), triggers=[])
        async def items(*, cursor: int = 0):
            yield cursor + 1

        try:
            asyncio.run(items())
        except ResumableError as exc:
            print("REFUSED", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(state)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "REFUSED" in done.stdout, done.stderr
    assert "`import resumable.apify`" in done.stdout
    assert record == json.loads((state / "items.json").read_text())
