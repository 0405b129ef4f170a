"""Crash safety: a FileStore job SIGKILLed at random moments and restarted loses nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from soak import kill_until_done, processed

CHILD = Path(__file__).with_name("child_job.py")
ITEMS = 3000


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.parametrize("every", [None, 7])
def test_killed_and_restarted_until_done_loses_nothing(tmp_path: Path, every: int | None):
    """Every item is processed; items before a persisted cursor never run again."""
    rng = random.Random(every or 0)
    state, log = tmp_path / "state", tmp_path / "log"
    record_path = state / "child.json"
    args = [sys.executable, str(CHILD), str(state), str(log), str(ITEMS)]
    if every is not None:
        args.append(str(every))
    soak = kill_until_done(
        lambda: subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        log,
        record_path,
        rng,
        step=400,
    )
    kills, saved_before_kill, resumed_at = soak.kills, soak.saved_before_kill, soak.resumed_at
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
