"""Cursors that evolve and state that heals: versions, upgrades, quarantine, size guards."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from resumable import (
    CorruptStateError,
    CursorTypeError,
    FileStore,
    MemoryStore,
    ResumableWarning,
    job,
    resumable,
)

FIXTURES = Path(__file__).with_name("fixtures")


@attrs.frozen
class Position:
    """Version 3 of the export job's cursor."""

    page: int
    token: str | None
    size: int


def offset_to_page(raw: Any) -> Any:
    """1 -> 2: an int offset became a page and a continuation token."""
    return {"page": raw // 100, "token": None}


def add_page_size(raw: Any) -> Any:
    """2 -> 3: the page size became part of the cursor."""
    return {**raw, "size": 100}


UPGRADES = {1: offset_to_page, 2: add_page_size}


@pytest.fixture
def v1_store(tmp_path: Path) -> FileStore:
    """A FileStore holding the record that version 1 of the export job wrote."""
    shutil.copy(FIXTURES / "export-v1.json", tmp_path / "export.json")
    return FileStore(tmp_path)


async def test_a_version_1_record_loads_in_version_3_through_two_upgrades(v1_store: FileStore):
    """The chain runs one step at a time, and the next write carries version 3."""
    seen: list[Position] = []

    @resumable(key="export", store=v1_store, version=3, upgrade=UPGRADES, triggers=[])
    async def export(*, cursor: Position = Position(0, None, 100)) -> AsyncIterator[Position]:
        seen.append(cursor)
        yield Position(cursor.page + 1, "next", cursor.size)

    outcome = await export()
    on_disk = json.loads((v1_store.directory / "export.json").read_text())

    assert [Position(12, None, 100)] == seen
    assert Position(12, None, 100) == outcome.resumed_from
    assert (3, {"page": 13, "token": "next", "size": 100}) == (
        on_disk["version"],
        on_disk["cursor"],
    )


async def test_state_peeks_through_the_upgrades_without_writing(v1_store: FileStore):
    """fn.state() shows the upgraded cursor and leaves the old record as it was."""
    before = (v1_store.directory / "export.json").read_bytes()

    @resumable(key="export", store=v1_store, version=3, upgrade=UPGRADES, triggers=[])
    async def export(*, cursor: Position = Position(0, None, 100)) -> AsyncIterator[Position]:
        yield cursor

    record = await export.state()

    assert record is not None
    assert Position(12, None, 100) == record.cursor
    assert before == (v1_store.directory / "export.json").read_bytes()


async def test_a_newer_record_is_refused_and_left_untouched(tmp_path: Path):
    """Code at version 3 meeting a version-4 record stops, even with quarantine on."""
    record = json.loads((FIXTURES / "export-v1.json").read_text()) | {"version": 4}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(record))
    before = path.read_bytes()

    for on_corrupt in ("raise", "quarantine"):
        with pytest.raises(CursorTypeError, match="version 4, newer than this code's version=3"):
            async with job(
                "export",
                cursor=Position(0, None, 100),
                store=FileStore(tmp_path),
                version=3,
                upgrade=UPGRADES,
                on_corrupt=on_corrupt,  # type: ignore[arg-type]
                triggers=[],
            ):
                pass

    assert before == path.read_bytes()
    assert ["export.json"] == sorted(p.name for p in tmp_path.glob("*.json"))


async def test_a_missing_upgrade_step_says_which_one(v1_store: FileStore):
    """Version 3 with only the 2 -> 3 step cannot read version 1, and says so."""
    with pytest.raises(CursorTypeError, match=r"no function for 1 -> 2.*upgrade=\{1: fn\}"):
        async with job(
            "export",
            cursor=Position(0, None, 100),
            store=v1_store,
            version=3,
            upgrade={2: add_page_size},
            triggers=[],
        ):
            pass


async def test_a_failing_upgrade_names_the_step_and_keeps_the_record(v1_store: FileStore):
    """An upgrade function that raises leaves the record as it was."""
    before = (v1_store.directory / "export.json").read_bytes()

    def broken(raw: Any) -> Any:
        raise KeyError("page")

    with pytest.raises(CursorTypeError, match="from version 1 to 2 failed on 1200"):
        async with job(
            "export", cursor=0, store=v1_store, version=2, upgrade={1: broken}, triggers=[]
        ):
            pass

    assert before == (v1_store.directory / "export.json").read_bytes()


async def test_quarantine_keeps_the_bad_bytes_under_a_new_name_and_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """on_corrupt='quarantine' moves an unreadable record aside, logs where, and runs."""
    store = FileStore(tmp_path)
    garbage = b"\x00\x01 not json"
    (tmp_path / "export.json").write_bytes(garbage)

    @resumable(key="export", store=store, on_corrupt="quarantine", triggers=[])
    async def export(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 3):
            yield i + 1

    outcome = await export()
    aside = [k for k in await store.keys() if k.startswith("export.corrupt-")]

    assert ("completed", 3, None) == (outcome.status, outcome.cursor, outcome.resumed_from)
    assert 1 == len(aside)
    assert garbage == await store.load(aside[0])
    assert aside[0] in caplog.text


async def test_quarantine_also_takes_a_cursor_that_no_longer_fits(tmp_path: Path):
    """A well-formed record whose cursor fails the type is moved aside the same way."""
    store = FileStore(tmp_path)
    async with job("export", cursor="text", store=store, triggers=[]) as j:
        j.advance("not-an-int")

    async with job("export", cursor=0, store=store, on_corrupt="quarantine", triggers=[]) as j:
        fresh = (j.cursor, j.resumed)
    aside = [k for k in await store.keys() if ".corrupt-" in k]

    assert (0, False) == fresh
    assert "not-an-int" == json.loads(await store.load(aside[0]) or b"")["cursor"]


async def test_without_quarantine_a_corrupt_record_stops_the_job(tmp_path: Path):
    """The default is to raise and keep the record, with the way out in the message."""
    (tmp_path / "export.json").write_text('{"resumable": 1}')

    with pytest.raises(CorruptStateError, match=r"missing key, cursor.*on_corrupt='quarantine'"):
        async with job("export", cursor=0, store=FileStore(tmp_path), triggers=[]):
            pass

    assert '{"resumable": 1}' == (tmp_path / "export.json").read_text()


async def test_the_size_guard_warns_once_past_warn_size():
    """A ResumableWarning names the key and the size, the first time only."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with job(
            "big", cursor="", store=MemoryStore(), warn_size=500, every=1, triggers=[]
        ) as j:
            for size in (100, 600, 700, 800):
                j.advance("x" * size)
                await j.save()
    ours = [w for w in caught if issubclass(w.category, ResumableWarning)]

    assert 1 == len(ours)
    assert "'big'" in str(ours[0].message)
    assert "warn_size=500" in str(ours[0].message)


async def test_the_size_guard_refuses_past_max_size():
    """A cursor past max_size fails the run with CursorTypeError; the last good one stays."""
    store = MemoryStore()

    @resumable(key="huge", store=store, max_size=1000, every=1, interval=None, triggers=[])
    async def huge(*, cursor: str = "") -> AsyncIterator[str]:
        yield "small"
        yield "x" * 2000

    with pytest.raises(CursorTypeError, match=r"'huge' serializes to \d+ bytes.*max_size=1000"):
        await huge()
    record = json.loads(await store.load("huge") or b"")

    assert ("small", "failed") == (record["cursor"], record["status"])
