"""`ActorProcess` and the `actor_process` fixture: an unmodified Actor in a child process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from resumable.testing import ActorProcess

pytestmark = pytest.mark.slow

ACTOR = textwrap.dedent(
    """
    import asyncio, sys
    from apify import Actor
    from crawlee.events import Event

    async def main():
        async with Actor:
            aborted = asyncio.Event()
            Actor.on(Event.ABORTING, lambda: aborted.set())
            await Actor.push_data({"argv": sys.argv[1:], "input": await Actor.get_input()})
            await Actor.set_value("note", {"at_home": Actor.is_at_home()})
            await Actor.set_value("text", "plain", content_type="text/plain")
            print("WAITING", flush=True)
            await aborted.wait()
            print("ABORTED", flush=True)

    asyncio.run(main())
    """
)


@pytest.fixture
def actor_script(tmp_path: Path) -> Path:
    """A small Actor, as a script: it records its arguments and input, then waits for abort."""
    script = tmp_path / "my_actor.py"
    script.write_text(ACTOR)
    return script


async def test_the_fixture_runs_an_unmodified_actor_and_reads_its_storage(
    actor_process: Callable[..., ActorProcess], actor_script: Path
) -> None:
    """The Actor gets its arguments and input, receives the events sent, and what it wrote
    to its dataset and key-value store is read back."""
    actor = actor_process(actor_script, "--fast", input={"items": 3})
    await actor.start("--more")
    await actor.until_logged("WAITING")

    await actor.abort()

    assert 0 == await actor.wait()
    assert "ABORTED" in actor.output()
    assert [{"argv": ["--fast", "--more"], "input": {"items": 3}}] == actor.dataset()
    assert {"at_home": True} == actor.value("note")
    assert "plain" == actor.value("text")
    assert actor.value("missing") is None


async def test_an_actor_that_fails_before_connecting_is_reported_with_its_log(
    actor_process: Callable[..., ActorProcess], tmp_path: Path
) -> None:
    """A run that dies before its SDK connects fails `start` at once, showing why."""
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('no such input: items')\n")
    actor = actor_process(broken)

    with pytest.raises(AssertionError, match=r"exited with code 1(.|\n)*no such input: items"):
        await actor.start(timeout=30)

    assert not actor.running


async def test_on_its_own_it_brings_a_stand_in_and_a_temporary_storage(
    actor_script: Path,
) -> None:
    """Without a platform or a directory, `async with` starts a stand-in and removes the
    temporary storage at the end; a run still going is killed."""
    async with ActorProcess(actor_script, at_home=False) as actor:
        await actor.start()
        await actor.until_logged("WAITING")
        note = actor.value("note")
        storage = actor.storage_dir

    assert {"at_home": False} == note
    assert not actor.running
    assert not storage.exists()


def test_the_launcher_says_how_to_call_it() -> None:
    """The child's launcher refuses a call without an Actor, with its usage."""
    done = subprocess.run(
        [sys.executable, "-m", "resumable.testing._launch"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert 1 == done.returncode
    assert "usage: python -m resumable.testing._launch (-m MODULE | PATH)" in done.stderr
