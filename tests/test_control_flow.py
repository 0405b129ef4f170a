"""Cancellation and every BaseException inside a store call go through at once, unchanged."""

from __future__ import annotations

import asyncio
import time

import pytest

from resumable import MemoryStore, job
from resumable._stores import Guard


class SlowLoad(MemoryStore):
    """A store whose load takes a long time, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, key: str) -> bytes | None:
        self.loads += 1
        await asyncio.sleep(3600)
        return None


class Raising(MemoryStore):
    """A store whose load raises *error* and counts its calls."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.loads = 0

    async def load(self, key: str) -> bytes | None:
        self.loads += 1
        raise self.error


async def test_a_timeout_around_a_run_fires_during_a_slow_load():
    """asyncio.timeout() around a run is honoured inside the claim's store call."""
    store = SlowLoad()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), job("slow", 0, store=store, triggers=[]):
            pass

    assert 1 == store.loads
    assert time.monotonic() - started < 5


async def test_cancelling_a_save_in_flight_propagates():
    """task.cancel() during j.save() cancels the task; the retry loop does not swallow it."""

    class SlowSave(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.saving = asyncio.Event()
            self.calls = 0

        async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
            self.calls += 1
            if self.calls == 2:  # the claim goes through; the save after it hangs
                self.saving.set()
                await asyncio.sleep(3600)
            await super().save(key, data, guard=guard)

    store = SlowSave()

    async def body() -> None:
        async with job("cancel-save", 0, store=store, triggers=[], interval=None) as j:
            j.advance(1)
            await j.save()

    task = asyncio.ensure_future(body())
    await store.saving.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert task.cancelled()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
async def test_a_base_exception_from_a_store_is_never_retried(error: BaseException):
    """Control flow raised by a store reaches the caller after one call, as itself."""
    store = Raising(error)
    with pytest.raises(type(error)):
        async with job("control", 0, store=store, triggers=[]):
            pass

    assert 1 == store.loads


async def test_an_ordinary_failure_is_retried():
    """An Exception from a store is retried (the contrast to the BaseException case)."""

    class FlakyLoad(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.loads = 0

        async def load(self, key: str) -> bytes | None:
            self.loads += 1
            if self.loads < 3:
                raise ConnectionError("not yet")
            return None

    store = FlakyLoad()
    async with job("flaky", 0, store=store, triggers=[]):
        pass

    assert 3 == store.loads
