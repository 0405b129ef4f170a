"""Small test doubles and polling helpers shared by the core's tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import attrs

from resumable import Controls, MemoryStore
from resumable._stores import Guard


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
