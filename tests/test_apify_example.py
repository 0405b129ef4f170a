"""examples/apify_actor: the example Actor resumes after a migration, and locally after Ctrl-C.

The Actor runs unmodified, as `python -m examples.apify_actor`, through the `actor_process`
fixture that users test their own Actors with.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from resumable.testing import ActorProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 40
INPUT = {"items": ITEMS, "delayMillis": 20}


def pushed(actor: ActorProcess) -> list[int]:
    """The `item` of every dataset record, in the order pushed."""
    return [record["item"] for record in actor.dataset()]


async def test_the_example_actor_resumes_after_a_migration(
    actor_process: Callable[..., ActorProcess],
) -> None:
    """Migrated (and killed) halfway, the example Actor continues on its next start from the
    cursor it saved; every item reaches the dataset, none before that cursor twice."""
    actor = actor_process("examples.apify_actor", input=INPUT, cwd=ROOT)
    await actor.start()
    await actor.until(lambda: len(pushed(actor)) >= 10, what="10 items pushed")

    await actor.migrate(time_remaining=20)
    await actor.until_logged("waiting for the platform to stop this process")
    await actor.kill()
    saved = actor.value("items")["cursor"]

    await actor.start()

    assert 0 == await actor.wait(), actor.log()
    counts = Counter(pushed(actor))
    assert set(range(ITEMS)) == set(counts)
    assert {} == {item: n for item, n in counts.items() if item < saved and n != 1}
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item {saved}" in actor.log()
    assert "completed" == actor.value("items")["status"]


async def test_the_example_actor_resumes_locally_after_ctrl_c(
    actor_process: Callable[..., ActorProcess],
) -> None:
    """Run locally (not at home, storage kept), interrupted with Ctrl-C and run again, the
    example finishes the remaining items."""
    actor = actor_process("examples.apify_actor", input=INPUT, cwd=ROOT, at_home=False)
    await actor.start()
    await actor.until(lambda: len(pushed(actor)) >= 5, what="5 items pushed")

    actor.send_signal(signal.SIGINT)

    assert 0 == await actor.wait(), actor.log()
    assert "Run aborted at item" in actor.log()

    await actor.start()

    assert 0 == await actor.wait(), actor.log()
    assert set(range(ITEMS)) == set(pushed(actor))
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item" in actor.log()
