"""examples/apify_actor: the example Actor resumes after a migration, and locally after Ctrl-C.

The Actor runs unmodified, as `python -m examples.apify_actor`, through the `actor_process`
fixture that users test their own Actors with.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
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
    cursor it saved; every item reaches the dataset exactly once."""
    actor = actor_process("examples.apify_actor", input=INPUT, cwd=ROOT)
    await actor.start()
    # Records reach the dataset with the saves, which the platform's persistState drives.
    deadline = time.monotonic() + 30
    while len(pushed(actor)) < 10:
        assert time.monotonic() < deadline, "10 items pushed: not within 30 s"
        await actor.persist_state()
        await asyncio.sleep(0.05)

    await actor.migrate(time_remaining=20)
    await actor.until_logged("waiting for the platform to stop this process")
    await actor.kill()
    saved = actor.value("items")["cursor"]

    await actor.start()

    assert 0 == await actor.wait(), actor.log()
    counts = Counter(pushed(actor))
    assert set(range(ITEMS)) == set(counts)
    assert {} == {item: n for item, n in counts.items() if n != 1}
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item {saved}" in actor.log()
    assert "completed" == actor.value("items")["status"]


async def test_the_example_actor_resumes_locally_after_ctrl_c(
    actor_process: Callable[..., ActorProcess],
) -> None:
    """Run locally (not at home, storage kept), interrupted with Ctrl-C and run again, the
    example finishes the remaining items, each pushed once."""
    actor = actor_process(
        "examples.apify_actor",
        input=INPUT,
        cwd=ROOT,
        at_home=False,
        # Saves (and with them the records) every 100 ms instead of every minute.
        env={"CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS": "100"},
    )
    await actor.start()
    await actor.until(lambda: len(pushed(actor)) >= 5, what="5 items pushed")

    actor.send_signal(signal.SIGINT)

    assert 0 == await actor.wait(), actor.log()
    assert "Run aborted at item" in actor.log()

    await actor.start()

    assert 0 == await actor.wait(), actor.log()
    assert list(range(ITEMS)) == sorted(pushed(actor))
    assert f"Run completed at item {ITEMS} of {ITEMS}, resumed from item" in actor.log()


def test_the_dockerfile_installs_resumable_from_the_wheel_the_readme_builds(
    tmp_path: Path,
) -> None:
    """`apify push` works without resumable on the package index: the README's command
    builds a wheel from the repository, and the Dockerfile's install takes resumable from it."""
    folder = ROOT / "examples" / "apify_actor"
    readme = (folder / "README.md").read_text()
    build = next(line for line in readme.splitlines() if line.startswith("pip wheel "))
    install = next(
        line.removeprefix("RUN ").split()
        for line in (folder / ".actor" / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip install ")
    )
    wheels = tmp_path / "wheels"
    shutil.copy(folder / "requirements.txt", tmp_path)

    subprocess.run(
        [sys.executable, "-m", *build.replace("examples/apify_actor/wheels", str(wheels)).split()],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    # As in the image, minus the index and any other place: resumable comes from the wheel.
    alone = ["--dry-run", "--ignore-installed", "--no-deps", "--no-index"]
    no_config = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    resolved = subprocess.run(
        [sys.executable, "-m", *install[:2], *alone, *install[2:]],
        cwd=tmp_path,
        env=no_config | {"PIP_CONFIG_FILE": os.devnull},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert ["--find-links", "./wheels"] == install[install.index("--find-links") :][:2]
    assert 0 == resolved.returncode, resolved.stderr
    assert "Would install resumable-" in resolved.stdout
