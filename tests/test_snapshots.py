"""A persisted cursor is the value yielded at that moment, even if the job changes it later."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import attrs
from helpers import CountingStore, Grab, record_of, wait_until

from resumable import MemoryStore, job, resumable
from resumable._snapshot import immutable
from resumable.testing import assert_resumes


async def test_a_dict_bumped_after_yield_is_persisted_as_yielded():
    """An abort during the page persists the yielded dict, not the one bumped ahead of the work."""
    store = MemoryStore()
    grab = Grab()
    started = asyncio.Event()
    release = asyncio.Event()
    done: list[int] = []

    @resumable(key="pages", store=store, interval=None, triggers=[grab], grace=60)
    async def pages(*, cursor: dict[str, int] = {"next": 0}) -> AsyncIterator[dict[str, int]]:  # noqa: B006
        state = dict(cursor)
        while state["next"] < 10:
            page = state["next"]
            yield state
            state["next"] = page + 1  # bookkeeping for the next round, before doing the page
            if page == 3:
                started.set()
                await release.wait()
            done.append(page)

    run = asyncio.ensure_future(pages())
    controls = await grab.job()
    await started.wait()
    abort = asyncio.ensure_future(controls.abort("test"))
    await wait_until(lambda: record_of(store, "pages")["status"] == "aborted")
    saved_during_the_page = record_of(store, "pages")["cursor"]
    release.set()
    outcome = await run
    await abort

    assert {"next": 3} == saved_during_the_page
    assert [0, 1, 2, 3] == done
    assert {"next": 4} == record_of(store, "pages")["cursor"]
    assert ("aborted", {"next": 4}) == (outcome.status, outcome.cursor)


async def test_a_list_appended_to_at_each_yield_is_saved_at_each_yield():
    """every=1 writes each yielded state of one list object that the job keeps appending to."""
    store = CountingStore()

    @resumable(key="seen", store=store, every=1, interval=None, triggers=[])
    async def seen(*, cursor: list[int] = []) -> AsyncIterator[list[int]]:  # noqa: B006
        names = list(cursor)
        for i in range(4):
            names.append(i)
            yield names
            await asyncio.sleep(0.001)

    await seen()
    written = [record_of_bytes(data) for data in store.writes]

    assert [[], [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]] == _distinct(written)


async def test_the_job_form_snapshots_at_advance():
    """j.advance(mutable) keeps the value of that moment."""
    store = MemoryStore()
    async with job("adv", cursor={"n": 0}, store=store, triggers=[]) as j:
        state = {"n": 5}
        j.advance(state)
        await j.save()
        state["n"] = 99
        saved = record_of(store, "adv")["cursor"]
        j.advance(dict(state))

    assert {"n": 5} == saved
    assert {"n": 99} == record_of(store, "adv")["cursor"]


async def test_assert_resumes_accepts_a_job_that_mutates_its_cursor():
    """A deterministic job that reuses one cursor object passes the resume check."""

    @resumable(key="mutating", store=MemoryStore(), triggers=[])
    async def mutating(*, cursor: dict[str, int] = {"next": 0}) -> AsyncIterator[dict[str, int]]:  # noqa: B006
        state = dict(cursor)
        while state["next"] < 6:
            state["next"] += 1
            yield state

    await assert_resumes(mutating)


@attrs.frozen
class Frozen:
    offset: int
    token: str | None


@attrs.define
class Loose:
    offset: int


@dataclass(frozen=True)
class FrozenDC:
    offset: int
    parts: tuple[int, ...]


@dataclass
class LooseDC:
    offset: int


def test_only_values_that_can_change_are_copied():
    """Immutable cursors are kept by reference (free); anything that can change is copied."""
    keep = [0, 1.5, "a", None, (1, "b"), Frozen(1, "x"), FrozenDC(1, (2, 3)), frozenset({1})]
    copy = [[1], {"a": 1}, {1}, Loose(1), LooseDC(1), (1, [2]), FrozenDC(1, ([2],))]  # type: ignore[arg-type]

    assert [True] * len(keep) == [immutable(value) for value in keep]
    assert [False] * len(copy) == [immutable(value) for value in copy]


async def test_an_immutable_cursor_is_not_copied():
    """The outcome's cursor is the very object the job yielded (no snapshot cost)."""
    last = Frozen(3, "t")

    @resumable(key="frozen", store=MemoryStore(), triggers=[])
    async def frozen(*, cursor: Frozen = Frozen(0, None)) -> AsyncIterator[Frozen]:
        yield last

    outcome = await frozen()

    assert last is outcome.cursor


def record_of_bytes(data: bytes) -> object:
    return json.loads(data)["cursor"]


def _distinct(values: list[object]) -> list[object]:
    out: list[object] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out
