"""What a store may offer beyond `Store`: named protocols, found and forwarded alike.

The engine, the command line and `FailingStore` find a store's capabilities through the same
runtime-checkable protocols, so a store wrapped for a test behaves as the store it wraps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resumable import FileStore, MemoryStore, StoreError, job
from resumable._errors import InvalidKeyError
from resumable._loop_thread import LoopBound
from resumable._stores import (
    Change,
    Guard,
    HasCliLocation,
    HasKeyLimit,
    SupportsAclose,
    SupportsOpen,
    SupportsUpdate,
    check_key,
    max_key_length,
)
from resumable.testing import FailingStore, fast_timing

CAPABILITIES = (SupportsUpdate, SupportsOpen, SupportsAclose, HasKeyLimit, HasCliLocation)


def capabilities(store: object) -> set[str]:
    return {protocol.__name__ for protocol in CAPABILITIES if isinstance(store, protocol)}


class Recording(FileStore):
    """A FileStore that records which of its methods the engine calls."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.calls: list[str] = []

    async def load(self, key: str) -> bytes | None:
        self.calls.append("load")
        return await super().load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.calls.append("save")
        await super().save(key, data, guard=guard)

    async def update(self, key: str, change: Change) -> None:
        self.calls.append("update")
        await super().update(key, change)


class Connected(MemoryStore):
    """A MemoryStore that must be opened before use, and counts its opens and closes."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.opened = 0
        self.closed = 0

    async def open(self) -> None:
        if self.refuse:
            raise ConnectionRefusedError("nothing listens there")
        self.opened += 1

    async def load(self, key: str) -> bytes | None:
        assert self.opened, "used before open()"
        return await super().load(key)

    async def aclose(self) -> None:
        self.closed += 1


def test_the_built_in_stores_name_what_they_offer(tmp_path: Path) -> None:
    """Each built-in store matches exactly the capability protocols it implements."""
    pytest.importorskip("redis")
    pytest.importorskip("sqlalchemy")
    from resumable.redis import RedisStore
    from resumable.sql import SQLStore

    everything = {"SupportsUpdate", "SupportsOpen", "SupportsAclose", "HasCliLocation"}
    expected = {
        "MemoryStore": set(),
        "FileStore": {"SupportsUpdate", "HasKeyLimit", "HasCliLocation"},
        "RedisStore": everything,
        "SQLStore": everything,
    }
    stores = [
        MemoryStore(),
        FileStore(tmp_path),
        RedisStore("redis://localhost:1/0"),
        SQLStore(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"),
    ]

    assert expected == {type(store).__name__: capabilities(store) for store in stores}


@pytest.mark.parametrize("inner", ["memory", "file", "connected"])
def test_a_failing_store_has_exactly_the_capabilities_of_the_store_it_wraps(
    inner: str, tmp_path: Path
) -> None:
    """FailingStore offers update, a key limit, a location, open and aclose when its inner
    store does, and nothing that it does not."""
    store = {"memory": MemoryStore(), "file": FileStore(tmp_path), "connected": Connected()}[inner]

    wrapped = FailingStore(store)

    assert capabilities(store) == capabilities(wrapped)
    assert isinstance(wrapped, FailingStore)
    assert max_key_length(store) == max_key_length(wrapped)
    assert f"FailingStore({store!r})" == repr(wrapped)


def test_a_failing_store_around_a_file_store_holds_its_keys(tmp_path: Path) -> None:
    """A key FileStore cannot hold is refused for the FailingStore around it too."""
    wrapped = FailingStore(FileStore(tmp_path))
    long = "k" * 250

    assert 240 == max_key_length(wrapped)
    assert str(tmp_path) == wrapped.cli_location
    with pytest.raises(InvalidKeyError, match="longer than the 240"):
        check_key(long, wrapped)
    with pytest.raises(InvalidKeyError, match="longer than the 240"):
        job(long, cursor=0, store=wrapped)


async def test_a_failing_store_around_a_file_store_claims_atomically(tmp_path: Path) -> None:
    """The claim goes through FileStore's atomic update, as it does without the wrapper,
    not through a load and a guarded save."""
    inner = Recording(tmp_path)

    async with job("atomic", cursor=0, store=FailingStore(inner), triggers=[]) as j:
        claimed = list(inner.calls)
        j.advance(1)

    assert ["update"] == claimed


async def test_a_failing_update_fails_as_a_load_or_a_save_and_is_retried(tmp_path: Path) -> None:
    """An update reads and writes: its read fails as a "load", its write as a "save"; the
    claim retries both."""
    for operation in ("load", "save"):
        store = FailingStore(FileStore(tmp_path / operation), first=1, operations=(operation,))

        async with job("claimed", cursor=0, store=store, triggers=[]) as j:
            j.advance(1)
        record = await store.inner.load("claimed")

        assert 1 == store.failures
        assert record is not None


async def test_a_failing_update_that_lands_still_raises(tmp_path: Path) -> None:
    """With lands=True a failing update reaches the inner store, then raises."""
    store = FailingStore(FileStore(tmp_path), forever=True, lands=True)
    assert isinstance(store, SupportsUpdate)

    with pytest.raises(ConnectionError, match="injected failure of save"):
        await store.update("k", lambda _: b"new")

    assert b"new" == await store.inner.load("k")


async def test_the_engine_opens_a_store_when_a_job_starts_and_leaves_it_open() -> None:
    """A job awaits the store's open() before its first call; closing is the store owner's."""
    store = Connected()

    async with job("opened", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)
    async with job("opened", cursor=0, store=FailingStore(store), triggers=[]):
        pass

    assert (2, 0) == (store.opened, store.closed)


async def test_a_store_that_cannot_be_opened_fails_the_start() -> None:
    """A store whose open() keeps being refused fails the job's start with a StoreError that
    says so, within the claim's budget for refused connections."""
    store = Connected(refuse=True)

    with fast_timing(claim_refused=0.05), pytest.raises(StoreError, match="refused") as caught:
        async with job("unreachable", cursor=0, store=store, triggers=[]):
            pass

    assert "'unreachable'" in str(caught.value)
    assert [] == await MemoryStore.keys(store)


def test_loop_bound_parts_say_so() -> None:
    """The Apify store and events are loop bound (a plain generator's job refuses them)."""
    pytest.importorskip("apify")
    from resumable.apify import ApifyEvents, ApifyStore

    store = ApifyStore()

    assert isinstance(store, LoopBound)
    assert isinstance(FailingStore(store), LoopBound)
    assert isinstance(ApifyEvents(), LoopBound)
    assert not isinstance(FailingStore(), LoopBound)
