"""The kill -9 soak shared by the async and plain jobs' crash tests.

A child job processes items, logging each item's number before it yields the cursor after
it, with a FileStore record at RECORD. The soak starts it, SIGKILLs it at a seeded moment,
starts it again, and so on until a run finishes; then the test checks what the log and the
record say.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from helpers import poll

from resumable._envelope import parse
from resumable._stores import FileStore


def processed(log: Path) -> list[int]:
    """Items the child started, in order (the last line may be torn by the kill)."""
    if not log.exists():
        return []
    text = log.read_text()
    lines = text.split("\n")
    complete = lines if text.endswith("\n") else lines[:-1]
    return [int(line) for line in complete if line]


@dataclass
class Soak:
    """What the kills did."""

    kills: int = 0
    window: int = 0  # items started after the persisted cursor, summed over the kills
    saved_before_kill: list[int] = field(default_factory=list)
    resumed_at: list[tuple[int, int]] = field(default_factory=list)  # (persisted, START)


def kill_until_done(
    launch: Callable[[], subprocess.Popen[str]],
    log: Path,
    record: Path,
    rng: random.Random,
    *,
    step: int,
) -> Soak:
    """Start the child, SIGKILL it after up to *step* more items, again, until it finishes.

    The record must load as a whole after every kill.
    """
    soak = Soak()
    while True:
        persisted = json.loads(record.read_text())["cursor"] if record.exists() else 0
        target = len(processed(log)) + rng.randint(1, step)
        child = launch()
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
                soak.kills += 1
            out, err = child.communicate(timeout=30)
        soak.resumed_at.extend(
            (persisted, int(line.split()[1]))
            for line in out.splitlines()
            if line.startswith("START")
        )
        if child.returncode == 0:
            return soak
        assert -signal.SIGKILL == child.returncode, err
        if record.exists():
            envelope = parse(record.read_bytes(), "child", FileStore(record.parent))
            soak.saved_before_kill.append(envelope["cursor"])
            soak.window += len(processed(log)) - envelope["cursor"]
        assert soak.kills < 500, "the job never finished"
