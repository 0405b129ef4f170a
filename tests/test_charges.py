"""`resumable.apify.charge` in a real Actor with ``ACTOR_TEST_PAY_PER_EVENT``: settling a
journal's pending charges against the run's counts, and the budget."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import charging_log, run_local_actor

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from apify import Actor
    from crawlee.crawlers import BasicCrawler, BasicCrawlingContext
    from resumable.apify import charge
    from resumable.crawlee import exactly_once

    async def main():
        async with Actor(exit_process=False):
            if sys.argv[1] == "earlier":
                # What an earlier run made before it was killed: one of its two charges.
                await Actor.charge("product", idempotency_key="made-before")
                return
            crawler = BasicCrawler(configure_logging=False)
            granted = []

            @crawler.router.default_handler
            async def handle(context: BasicCrawlingContext) -> None:
                result = await charge("product", count=2)
                granted.append(result.charged_count)

            run = exactly_once(crawler, key="charged")
            await run.run([f"https://shop.invalid/{n}" for n in range(int(sys.argv[2]))])
            print("GRANTED", json.dumps(sorted(granted)), flush=True)

    asyncio.run(main())
    """
)


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = run_local_actor(tmp_path, SCRIPT, *args, **env)
    assert 0 == done.returncode, done.stderr
    return done


def journal(tmp_path: Path, state: dict[str, object]) -> None:
    """Leave *state* as the journal of key ``charged`` in the Actor's key-value store."""
    folder = tmp_path / "storage" / "key_value_stores" / "default"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "resumable": 1, "key": "charged", "version": 1, "status": "running", "seq": 3,
        "generation": 1, "owner": "earlier", "updated_at": "2026-01-01T00:00:00+00:00",
        "cursor": state,
    }  # fmt: skip
    (folder / "charged").write_text(json.dumps(record))
    (folder / "charged.__metadata__.json").write_text(
        json.dumps({"key": "charged", "content_type": "application/json", "size": 1})
    )


def test_a_restart_charges_only_what_the_runs_counts_do_not_show(tmp_path: Path) -> None:
    """A journal left with two committed charges, of which the run's charging log shows one
    made (long after its idempotency key was forgotten): the next run makes only the other."""
    run(tmp_path, "earlier")
    journal(
        tmp_path,
        {
            "requests": [], "finished": 0, "failed": 0, "datasets": [], "values": [],
            "charges": {"product": {"charged": 0, "pending": [["a", 1], ["b", 1]]}},
        },
    )  # fmt: skip

    run(tmp_path, "later", "0")

    made = [(entry["charged_count"], entry["idempotency_key"]) for entry in charging_log(tmp_path)]

    assert 2 == len(made)
    assert (1, "made-before") == made[0]
    assert 1 == made[1][0]
    assert str(made[1][1]).startswith("resumable-")


def test_charges_are_granted_within_the_maximum_total_charge(tmp_path: Path) -> None:
    """With $5 to spend at $1 an event, three requests asking for two each are granted 2, 2
    and 1 (pending charges count against the budget), and 5 are made."""
    done = run(tmp_path, "crawl", "3", ACTOR_MAX_TOTAL_CHARGE_USD="5")

    granted = next(line for line in done.stdout.splitlines() if line.startswith("GRANTED"))
    made = sum(int(str(entry["charged_count"])) for entry in charging_log(tmp_path))

    assert "GRANTED [1, 2, 2]" == granted
    assert 5 == made
