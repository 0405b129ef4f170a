"""Exactly-once outputs across SIGKILL: at each step of the commit protocol, and a soak."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers import poll

CHILD = Path(__file__).with_name("outbox_child.py")


def lines(sink: Path) -> list[int]:
    """The items in the sink file; every line must be valid JSON, and complete."""
    if not sink.exists():
        return []
    text = sink.read_text()
    assert text == "" or text.endswith("\n"), "the file ends with a torn line"
    return [json.loads(line)["n"] for line in text.splitlines()]


def run(state: Path, sink: Path, n: int, every: int, kill_at: str | None = None) -> int:
    """Run the child to its end (or its own SIGKILL); return its exit code."""
    args = [sys.executable, str(CHILD), str(state), str(sink), str(n), str(every)]
    if kill_at is not None:
        args.append(kill_at)
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


STEPS = [
    "before-record:1",
    "after-record:1",
    "after-record:3",
    "mid-delivery:1",
    "mid-delivery:2",
    "after-delivery:1",
    "after-delivery:2",
    "before-mark:1",
    "before-mark:2",
]


@pytest.mark.parametrize("kill_at", STEPS)
def test_a_kill_at_each_step_of_the_commit_protocol_delivers_each_item_once(
    tmp_path: Path, kill_at: str
):
    """Killed at a step of a save, then run again: the sink holds every item once, in order."""
    state, sink = tmp_path / "state", tmp_path / "out.jsonl"

    first = run(state, sink, 20, 4, kill_at)
    second = run(state, sink, 20, 4)

    assert (-signal.SIGKILL, 0) == (first, second)
    assert list(range(20)) == lines(sink)


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.parametrize("concurrent", [False, True], ids=["loop", "concurrently"])
def test_a_kill_9_soak_leaves_every_item_exactly_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrent: bool
):
    """Thirty SIGKILLs a few ms into each run: each item once, in push order, all lines JSON."""
    if concurrent:
        monkeypatch.setenv("OUTBOX_CHILD_CONCURRENT", "1")
    rng = random.Random(13)
    state, sink = tmp_path / "state", tmp_path / "out.jsonl"
    n, kills = 3000, 0
    args = [sys.executable, str(CHILD), str(state), str(sink), str(n), "3"]
    while kills < 30:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        started = child.stdout.readline()
        ready = child.stdout.readline()
        if not ready.startswith("READY"):
            break  # nothing left to do: the job completed
        assert started.startswith("START")
        target = (sink.read_bytes().count(b"\n") if sink.exists() else 0) + rng.randint(1, 9)
        poll(
            lambda child=child, target=target: (  # type: ignore[misc]
                child.poll() is not None
                or (sink.exists() and sink.read_bytes().count(b"\n") >= target)
            ),
            timeout=30,
        )
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.communicate(timeout=30)
    run(state, sink, n, 3)

    items = lines(sink)
    duplicates = sum(count - 1 for count in Counter(items).values())
    mode = "concurrently" if concurrent else "loop"
    print(f"soak ({mode}): {kills} kills, {len(items)} items, {duplicates} duplicates")

    assert 30 == kills
    assert list(range(n)) == items
