"""Small test doubles and polling helpers shared by the core's tests."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from resumable import Controls, MemoryStore
from resumable._stores import Guard
from resumable.testing import MemorySink


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll *predicate* on the event loop until it holds, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.001)


def poll(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll *predicate* (blocking) until it holds, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


class CountingStore(MemoryStore):
    """A MemoryStore that records every write and can hold writes at a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await super().save(key, data, guard=guard)
            self.writes.append(data)
        finally:
            self.in_flight -= 1


class FlakyStore(MemoryStore):
    """A MemoryStore whose first *failures* writes raise, then works (or never, with -1)."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0
        self.error = error or ConnectionError("store unreachable")

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.attempts += 1
        if self.failures != 0:
            self.failures -= 1
            raise self.error
        await super().save(key, data, guard=guard)


class Grab:
    """A trigger that hands the test the controls of the job it attached to."""

    def __init__(self) -> None:
        self.controls: list[Controls] = []

    def attach(self, controls: Controls, /) -> Callable[[], None]:
        self.controls.append(controls)
        return lambda: None

    async def job(self) -> Controls:
        """Wait for the job to start and return its controls."""
        await wait_until(lambda: bool(self.controls))
        return self.controls[-1]


class HangingStore(MemoryStore):
    """A MemoryStore whose save number *hang_at* (1 = the claim) never returns."""

    def __init__(self, hang_at: int) -> None:
        super().__init__()
        self.hang_at = hang_at
        self.calls = 0
        self.hanging = asyncio.Event()

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.calls += 1
        if self.calls == self.hang_at:
            self.hanging.set()
            await asyncio.Event().wait()
        await super().save(key, data, guard=guard)


class AppendOnly(MemorySink):
    """A sink that cannot check where an append lands, as a dataset or a queue cannot."""

    async def append(self, items: Sequence[Any], start: int) -> None:
        self.items.extend(items)
        self.appends.append(len(items))


def record_of(store: MemoryStore, key: str) -> dict[str, Any]:
    """The JSON envelope stored under *key*."""
    return dict(json.loads(store._records[key]))


@attrs.frozen
class Seen:
    """The parts of a record that a watcher of a shared store checks as it changes."""

    seq: int
    generation: int
    cursor: int
    owner: str
    status: str

    @classmethod
    def of(cls, data: bytes) -> Seen:
        record = json.loads(data)
        return cls(
            record["seq"],
            record.get("generation", 0),
            record["cursor"],
            record["owner"],
            record["status"],
        )

    def check_after(self, last: Seen, key: str) -> None:
        """Fail unless this record moved forward from *last*: seq, cursor and generation."""
        assert self.seq > last.seq, f"{key}: seq went from {last} to {self}"
        assert self.cursor >= last.cursor, f"{key}: cursor went from {last} to {self}"
        assert self.generation >= last.generation, f"{key}: {last} then {self}"


SCRIPT = shutil.which("resumable", path=str(Path(sys.executable).parent))
"""The installed ``resumable`` console script, if any."""


def cli(
    *args: str, stdin: bytes | None = None, script: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m resumable ARGS`` (or the installed ``resumable`` script)."""
    command = [SCRIPT] if script and SCRIPT else [sys.executable, "-m", "resumable"]
    return subprocess.run(
        [*command, *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """Check that *result* failed with one line on stderr and nothing on stdout; return it."""
    assert result.returncode == 1, result
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()

    assert 1 == len(lines), lines
    assert lines[0].startswith("resumable: ")
    return lines[0]


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when it has nothing to do but wait.

    Whenever every task waits for a timer, the clock jumps to the earliest one (trio's
    ``MockClock(autojump_threshold=0)``): sleeps, timeouts and deadlines cost no real time,
    and what happens before which deadline depends on the order of the work alone, never on
    how busy the machine is. Real I/O (a thread calling into the loop) is still waited for
    when no timer is due.
    """

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        """The loop's clock: virtual seconds since the loop was made."""
        return self.now


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Answers what is ready now; instead of waiting for a timer, moves the clock to it."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready: list[Any] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only real I/O can wake the loop
            return list(super().select(None))
        self._loop.now += timeout
        return []


def run_local_actor(
    tmp_path: Path, script: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run *script* (``python -c``) as a local run of a pay-per-event Actor.

    Its storage is ``tmp_path / "storage"``, kept from one run to the next (no purge), and
    ``ACTOR_TEST_PAY_PER_EVENT`` makes the SDK charge and log each charge (`charging_log`).
    """
    environment = os.environ | {
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "storage"),
        "CRAWLEE_PURGE_ON_START": "false",
        "ACTOR_TEST_PAY_PER_EVENT": "true",
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment | env,
    )


def charging_log(tmp_path: Path) -> list[dict[str, Any]]:
    """The charges the SDK logged in the local runs of `run_local_actor`, in order."""
    folder = tmp_path / "storage" / "datasets" / "charging-log"
    return [json.loads(f.read_text()) for f in sorted(folder.glob("0*.json"))]
