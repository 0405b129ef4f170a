"""Ordinary mistakes get a clear error at once, and lose nothing."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from resumable import (
    CursorTypeError,
    FileStore,
    InvalidKeyError,
    InvalidOptionError,
    MemoryStore,
    StoreError,
    job,
    resumable,
)

RECORD = {
    "resumable": 1,
    "key": "k",
    "version": 1,
    "status": "running",
    "seq": 4,
    "owner": "x",
    "updated_at": "2024-01-01T00:00:00+00:00",
    "cursor": 3,
}


@pytest.mark.parametrize("length", [241, 250, 256])
async def test_a_key_too_long_for_file_names_is_refused_at_once(tmp_path: Path, length: int):
    """FileStore cannot name the files of such a key: InvalidKeyError at once, not retries."""
    store = FileStore(tmp_path)
    started = time.monotonic()
    with pytest.raises(InvalidKeyError, match=r"FileStore.*shorter key"):
        async with job("k" * length, 0, store=store, triggers=[]):
            pass

    assert time.monotonic() - started < 1
    assert [] == list(tmp_path.iterdir())


async def test_the_longest_key_a_file_store_takes_works_end_to_end(tmp_path: Path):
    """240 characters: saved, quarantined names fit, and it loads back."""
    store = FileStore(tmp_path)
    key = "k" * 240
    async with job(key, 0, store=store, triggers=[]) as j:
        j.advance(5)
    async with job(key, 0, store=store, triggers=[]) as j:
        resumed = j.cursor

    assert 5 == resumed


@pytest.mark.parametrize("interval", [math.nan, math.inf, -1, 0, "10"])
def test_a_nonsensical_interval_is_refused(interval: object):
    """interval= must be a finite positive number of seconds."""
    with pytest.raises(InvalidOptionError, match="interval="):
        job("k", 0, interval=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", [{"every": 0}, {"grace": -1}, {"version": 0}, {"max_size": 0}])
def test_nonsensical_options_are_refused_when_declared(option: dict[str, object]):
    """The decorator checks its options once, at decoration."""
    with pytest.raises(InvalidOptionError, match=f"{next(iter(option))}="):

        @resumable(key="k", **option)  # type: ignore[call-overload]
        async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
            yield 1


@pytest.mark.parametrize("record", [{**RECORD, "version": 5}, {**RECORD, "resumable": 2}])
async def test_a_newer_record_is_refused_even_with_quarantine(record: dict[str, object]):
    """A record from a newer version is left in place: a rollback must not restart from zero."""
    store = MemoryStore()
    raw = json.dumps(record).encode()
    await store.save("k", raw)
    with pytest.raises(CursorTypeError, match="newer"):
        async with job("k", 0, store=store, triggers=[], on_corrupt="quarantine"):
            pass

    assert ["k"] == await store.keys()
    assert raw == await store.load("k")


async def test_a_missing_upgrade_step_is_refused_even_with_quarantine():
    """A readable record that needs an upgrade step the job lacks stays where it is."""
    store = MemoryStore()
    raw = json.dumps(RECORD).encode()
    await store.save("k", raw)
    with pytest.raises(CursorTypeError, match=r"upgrade=\{1: fn\}"):
        async with job("k", 0, store=store, triggers=[], version=3, on_corrupt="quarantine"):
            pass

    assert raw == await store.load("k")


@pytest.mark.parametrize("value", ["text", {"a": 1}, 42])
async def test_a_store_whose_load_returns_no_bytes_is_named(value: object):
    """A store adapter that returns something other than bytes gets a StoreError that says so."""

    class Confused(MemoryStore):
        calls = 0

        async def load(self, key: str) -> bytes | None:
            Confused.calls += 1
            return value  # type: ignore[return-value]

    with pytest.raises(StoreError, match="not bytes or None"):
        async with job("k", 0, store=Confused(), triggers=[]):
            pass

    assert 1 == Confused.calls


async def test_the_default_store_stays_where_the_run_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A job that changes directory while it runs keeps writing to the directory it started in."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)

    @resumable(key="cd", every=1, triggers=[])
    async def work(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 5):
            if i == 2:
                os.chdir(second)
            await asyncio.sleep(0)
            yield i + 1

    outcome = await work()

    assert ("completed", 5) == (outcome.status, outcome.cursor)
    assert (first / ".resumable" / "cd.json").exists()
    assert not (second / ".resumable").exists()


class Unstorable:
    """A cursor class cattrs knows nothing about."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Unstorable({self.n})"


async def test_an_unstorable_fresh_start_cursor_is_named_as_the_default():
    """The default of `cursor` is not something the job yielded: the error says where it
    came from and what to do."""

    @resumable(key="pos", store=MemoryStore(), triggers=[])
    async def positions(*, cursor: Unstorable = Unstorable(0)) -> AsyncIterator[Unstorable]:  # noqa: B008
        yield cursor

    with pytest.raises(CursorTypeError) as caught:
        await positions()
    message = str(caught.value)

    assert "'pos'" in message
    assert "fresh-start cursor (the default of its `cursor` parameter) Unstorable(0)" in message
    assert "yielded" not in message
    assert "converter=" in message


async def test_a_value_of_the_wrong_type_says_which_type_it_should_be():
    """An unannotated `cursor=0` given a dict: the message names the cursor type properly."""

    @resumable(key="counts", store=MemoryStore(), triggers=[])
    async def counts(*, cursor=0) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
        yield {"n": 1}

    with pytest.raises(CursorTypeError) as caught:
        await counts()
    message = str(caught.value)

    assert "yielded {'n': 1} (dict)" in message
    assert "as the cursor type int" in message
    assert "a int" not in message
