"""Crash safety: a FileStore job SIGKILLed at random moments and restarted loses nothing."""

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

from resumable._codec import parse
from resumable._stores import FileStore

CHILD = Path(__file__).with_name("child_job.py")
ITEMS = 3000


def processed(log: Path) -> list[int]:
    """Items the child started, in order (the last line may be torn by the kill)."""
    if not log.exists():
        return []
    text = log.read_text()
    lines = text.split("\n")
    complete = lines if text.endswith("\n") else lines[:-1]
    return [int(line) for line in complete if line]


@pytest.mark.slow
@pytest.mark.parametrize("every", [None, 7])
def test_killed_and_restarted_until_done_loses_nothing(tmp_path: Path, every: int | None):
    """Every item is processed; items before a persisted cursor never run again."""
    rng = random.Random(every or 0)
    state, log = tmp_path / "state", tmp_path / "log"
    record_path = state / "child.json"
    args = [sys.executable, str(CHILD), str(state), str(log), str(ITEMS)]
    if every is not None:
        args.append(str(every))
    kills = 0
    saved_before_kill: list[int] = []
    resumed_at: list[tuple[int, int]] = []  # (cursor persisted before the start, START cursor)
    while True:
        persisted = json.loads(record_path.read_text())["cursor"] if record_path.exists() else 0
        seen = len(processed(log))
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        target = seen + rng.randint(1, 400)
        try:
            poll(
                lambda child=child, target=target: (  # type: ignore[misc]
                    child.poll() is not None or len(processed(log)) >= target
                ),
                timeout=60,
            )
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            out, err = child.communicate(timeout=30)
        resumed_at.extend(
            (persisted, int(line.split()[1]))
            for line in out.splitlines()
            if line.startswith("START")
        )
        if child.returncode == 0:
            break
        assert -signal.SIGKILL == child.returncode, err
        # The state file always loads, as a whole record.
        if record_path.exists():
            envelope = parse(record_path.read_bytes(), "child", FileStore(state))
            saved_before_kill.append(envelope["cursor"])
        assert kills < 500, "the job never finished"

    items = processed(log)
    counts = Counter(items)
    final = json.loads(record_path.read_text())
    duplicates = sum(c - 1 for c in counts.values())

    assert set(range(ITEMS)) == set(counts)
    assert ("completed", ITEMS) == (final["status"], final["cursor"])
    assert kills >= 3
    # Every restart began exactly at the cursor persisted when the previous run died...
    assert [p for p, _ in resumed_at] == [s for _, s in resumed_at]
    # ...and persisted cursors only move forward.
    assert saved_before_kill == sorted(saved_before_kill), "a save went backwards"
    # So an item runs again only inside the window between a save and the kill after it.
    for item, times in counts.items():
        if times > 1:
            assert any(p <= item for p, _ in resumed_at[1:]), item
    print(f"every={every}: {kills} kills, {ITEMS} items, {duplicates} duplicates")
