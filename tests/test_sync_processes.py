"""Plain generators in real child processes: SIGKILL at random moments, SIGTERM, SIGINT."""

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
from soak import kill_until_done, processed

CHILD = Path(__file__).with_name("sync_child.py")
ITEMS = 2000


def start(tmp_path: Path, n: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            str(tmp_path / "state"),
            str(tmp_path / "log"),
            str(n),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(child: subprocess.Popen[str], marker: str) -> list[str]:
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if marker in line:
            return lines
    raise AssertionError(f"child ended before {marker}: {lines}")


def interrupt_until_it_exits(
    child: subprocess.Popen[str], *, tries: int, wait: float
) -> tuple[str, str]:
    """SIGINT *child* until it exits (*wait* seconds after each); its stdout and stderr."""
    for _ in range(tries):
        child.send_signal(signal.SIGINT)
        try:
            return child.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    raise AssertionError(f"{tries} SIGINTs {wait} s apart did not end the child")


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(240)
@pytest.mark.parametrize("every", [None, 7])
def test_killed_and_restarted_until_done_loses_nothing(tmp_path: Path, every: int | None):
    """At least 30 SIGKILLs at seeded moments: the record always loads, every item is
    processed, and an item runs again only after the cursor persisted before the kill."""
    rng = random.Random(1500 + (every or 0))
    state, log = tmp_path / "state", tmp_path / "log"
    record_path = state / "child.json"
    extra = [str(every)] if every is not None else []
    soak = kill_until_done(lambda: start(tmp_path, ITEMS, *extra), log, record_path, rng, step=90)
    kills, window = soak.kills, soak.window
    saved_before_kill, resumed_at = soak.saved_before_kill, soak.resumed_at
    items = processed(log)
    counts = Counter(items)
    final = json.loads(record_path.read_text())
    duplicates = sum(c - 1 for c in counts.values())

    assert kills >= 30
    assert set(range(ITEMS)) == set(counts)
    assert ("completed", ITEMS) == (final["status"], final["cursor"])
    # Every restart began exactly at the cursor persisted when the previous run died...
    assert [p for p, _ in resumed_at] == [s for _, s in resumed_at]
    # ...persisted cursors only move forward...
    assert saved_before_kill == sorted(saved_before_kill), "a save went backwards"
    # ...so only the work after a persisted cursor ran again (at-least-once, nothing more).
    assert duplicates <= window
    for item, times in counts.items():
        if times > 1:
            assert any(p <= item for p, _ in resumed_at[1:]), item
    print(f"every={every}: {kills} kills, {ITEMS} items, {duplicates} duplicates")


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(240)
def test_killed_and_restarted_with_an_outbox_delivers_each_item_exactly_once(tmp_path: Path):
    """At least 30 SIGKILLs of a plain job that pushes each item into its outbox: the sink
    ends with every item exactly once, in order, every line valid JSON."""
    rng = random.Random(2026)
    log, record_path = tmp_path / "log", tmp_path / "state" / "child.json"
    soak = kill_until_done(
        lambda: start(tmp_path, ITEMS, "--outbox"), log, record_path, rng, step=90
    )
    lines = (tmp_path / "state" / "out.jsonl").read_text().splitlines()
    delivered = [json.loads(line) for line in lines]
    redone = sum(c - 1 for c in Counter(processed(log)).values())

    assert soak.kills >= 30
    assert list(range(ITEMS)) == delivered
    print(f"outbox: {soak.kills} kills, {ITEMS} items, {redone} items redone, 0 duplicated")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_plain_job_at_its_next_yield(tmp_path: Path, signum: int):
    """The real process ends `aborted`: the generator's finally ran, and the record holds the
    last cursor it yielded."""
    child = start(tmp_path, 1_000_000)
    read_until(child, "READY")
    child.send_signal(signum)
    out, err = child.communicate(timeout=30)
    outcome = json.loads(out.split("OUTCOME", 1)[1])
    record = json.loads((tmp_path / "state" / "child.json").read_text())
    started = processed(tmp_path / "log")

    assert 0 == child.returncode, err
    assert "FINALLY" in out
    assert "aborted" == outcome["status"]
    assert (outcome["cursor"], "aborted") == (record["cursor"], record["status"])
    # Item i yields cursor i + 1: the last yielded cursor covers every item started.
    assert len(started) == record["cursor"]


def test_a_second_sigint_interrupts_a_job_stuck_past_its_grace(tmp_path: Path):
    """A thread cannot be cancelled: after the grace the work is cut (nothing it yields is
    persisted) and the next SIGINT goes to Python's own handler, as KeyboardInterrupt; the
    run still ends `aborted` at the last cursor yielded before the cut."""
    child = start(tmp_path, 1_000_000, "--stuck")
    read_until(child, "STUCK")
    child.send_signal(signal.SIGINT)
    read_until(child, "cancelling it")
    # The abort ends just after its log line: ask again until it has.
    out, err = interrupt_until_it_exits(child, tries=5, wait=5)
    record = json.loads((tmp_path / "state" / "child.json").read_text())

    assert 0 != child.returncode
    assert "KeyboardInterrupt" in err
    assert "FINALLY" in out
    assert ("aborted", 4) == (record["status"], record["cursor"])


def test_a_second_sigint_once_the_abort_has_saved_interrupts_a_plain_job_at_once(
    tmp_path: Path,
):
    """A thread cannot be cancelled, so once the abort's save has landed the second SIGINT
    goes straight to Python's own handler, without waiting out the work's grace (30 s)."""
    child = start(tmp_path, 1_000_000, "--stuck", "--long-grace")
    record_file = tmp_path / "state" / "child.json"
    try:
        read_until(child, "STUCK")
        child.send_signal(signal.SIGINT)
        # The abort's save is one fsynced write; the minute is for a disk shared with other
        # work (a hang, not a slow fsync, is what fails here).
        poll(lambda: json.loads(record_file.read_text())["status"] == "aborted", 60)
        # The record lands a moment before the run counts its abort as saved; a SIGINT in
        # between is ignored, as one before the save is. Ask again, well within the grace.
        out, err = interrupt_until_it_exits(child, tries=8, wait=3)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    record = json.loads(record_file.read_text())

    assert 0 != child.returncode
    assert "KeyboardInterrupt" in err
    assert "FINALLY" in out
    assert ("aborted", 4) == (record["status"], record["cursor"])
