"""A job that survives being stopped: run it, interrupt it, run it again, and it continues.

    python examples/demo.py          # watch it happen: SIGTERM, then SIGKILL, then a resume
    python examples/demo.py --step   # do it yourself: press Ctrl-C, then run it again
    python examples/demo.py --reset  # forget --step's saved state

The state lives in ``.resumable/`` in the current directory (``--step``) or in a temporary
directory (the automatic run). ``python -m resumable show demo`` shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from resumable import resumable

LAST_RUN = {"aborted": "was stopped", "failed": "failed", "running": "was killed or crashed"}


# [docs: job]
ITEMS = 40
DELAY = 0.1


@resumable(key="demo", every=5)
async def process(*, cursor: int = 0) -> AsyncIterator[int]:
    """Process items one by one; the cursor is the first item not done yet."""
    for item in range(cursor, ITEMS):
        await asyncio.sleep(DELAY)  # the real work: an API call, a database write...
        print(f"item {item} done", flush=True)
        yield item + 1  # everything before item + 1 is done


# [docs: end]


async def step() -> None:
    """Run the job in the foreground, saying where it starts and how it ended."""
    saved = await process.state()
    if saved is None:
        print(f"Starting fresh: {ITEMS} items, one every {DELAY} s. Press Ctrl-C to stop.")
    elif saved.status == "completed":
        print("All items are done already. `--reset` forgets that, to start over.")
        return
    else:
        before = LAST_RUN.get(saved.status, saved.status)
        print(f"Resuming at item {saved.cursor} (the last run {before}). Ctrl-C stops it.")
    outcome = await process()
    if outcome.status == "completed":
        print(f"Done: all {ITEMS} items.")
    else:
        print(f"Stopped; saved cursor {outcome.cursor}. Run the same command to continue.")


def tell(text: str) -> None:
    """Print a line of the automatic run's story."""
    print(f"\n==> {text}", flush=True)


class Child:
    """One run of ``demo.py --step`` in a child process, watched line by line."""

    def __init__(self, workdir: Path, done: Counter[int]) -> None:
        self.done = done
        self.mid_line = False
        self.process = subprocess.Popen(  # noqa: S603 - runs this very file
            [sys.executable, str(Path(__file__).resolve()), "--step"],
            cwd=workdir,
            stdout=subprocess.PIPE,
            text=True,
        )
        # A safety net: whatever happens, no child outlives the demo's deadline.
        self._deadline = threading.Timer(30, self.process.kill)
        self._deadline.start()

    def follow(self, until: int | None = None) -> None:
        """Echo the child's output until it has done item *until* (or until it ends)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("item "):
                item = int(line.split()[1])
                self.done[item] += 1
                print(f"{'' if self.mid_line else '    '}{item}", end=" ", flush=True)
                self.mid_line = True
                if item == until:
                    break
            else:
                print(f"\n    {line.rstrip()}" if self.mid_line else f"    {line.rstrip()}")
                self.mid_line = False
        if self.mid_line:
            print()
            self.mid_line = False

    def stop(self, signum: int) -> None:
        """Send *signum*, then echo what the child still says until it exits."""
        self.process.send_signal(signum)
        self.follow()
        self.process.wait()
        self._deadline.cancel()


def show_state(workdir: Path) -> None:
    """Show the saved state the way a user would look at it: with the command line."""
    print("    $ python -m resumable show demo", flush=True)
    shown = subprocess.run(
        [sys.executable, "-m", "resumable", "show", "demo"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in shown.stdout.splitlines():
        if line.split()[0] in ("cursor", "status", "age"):
            print(f"    {line}")


def story() -> None:
    """Run the job three times in child processes, stopping the first two mid-way."""
    done: Counter[int] = Counter()
    with tempfile.TemporaryDirectory(prefix="resumable-demo-") as directory:
        workdir = Path(directory)
        print(f"A job processes {ITEMS} items, one every {DELAY} s, saving its cursor every")
        print(f"5 items to {workdir / '.resumable'}. We will stop it twice.")

        tell("Run 1: start the job")
        first = Child(workdir, done)
        first.follow(until=12)
        tell("SIGTERM (what Kubernetes or a spot machine sends): the job saves and stops")
        first.stop(signal.SIGTERM)
        show_state(workdir)

        tell("Run 2: the same command again")
        second = Child(workdir, done)
        second.follow(until=27)
        tell("SIGKILL (a crash: no chance to save): the last periodic save is what is left")
        second.stop(signal.SIGKILL)
        show_state(workdir)

        tell("Run 3: the same command again")
        third = Child(workdir, done)
        third.stop(0)  # signal 0 sends nothing: just follow it to the end

    again = sorted(item for item, runs in done.items() if runs > 1)
    missing = [item for item in range(ITEMS) if item not in done]
    tell(f"{len(done)} of {ITEMS} items done, none skipped." if not missing else "BUG")
    print(f"    Done twice: {again or 'none'} (work after the last save before the crash).")
    print("    Before a saved cursor, nothing ever runs twice. Try it: --step, Ctrl-C, again.")
    if missing:
        raise SystemExit(f"items never done: {missing}")


def main() -> None:
    """Parse the command line and run the story, one step, or a reset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--step", action="store_true", help="run the job once, in the foreground")
    mode.add_argument("--reset", action="store_true", help="forget the saved state of --step")
    args = parser.parse_args()
    # The demo prints every item itself: a progress line on the terminal would draw over them.
    os.environ.setdefault("RESUMABLE_PROGRESS", "0")
    if args.step:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C during the save
            asyncio.run(step())
    elif args.reset:
        asyncio.run(process.reset())
        print("Forgotten: the next --step starts fresh.")
    else:
        story()


if __name__ == "__main__":
    main()
