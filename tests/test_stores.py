"""The store contract, once for every store; then what only FileStore promises."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from resumable import FileStore, InvalidKeyError, Store, job


async def test_a_missing_key_loads_as_none(any_store: Store):
    """Nothing saved, nothing loaded."""
    assert await any_store.load("nothing-here") is None


async def test_save_then_load_gives_the_same_bytes(any_store: Store):
    """A record comes back exactly as it was saved; a second save replaces it whole."""
    await any_store.save("k", b'{"resumable":1,"a":1}')
    await any_store.save("k", b'{"resumable":1,"b":2}')

    assert b'{"resumable":1,"b":2}' == await any_store.load("k")


async def test_the_guard_sees_the_current_record_and_can_veto(any_store: Store):
    """save() shows the guard the current bytes; when it raises, nothing is written."""
    seen: list[bytes | None] = []

    def record_and_allow(current: bytes | None) -> None:
        seen.append(current)

    def refuse(current: bytes | None) -> None:
        raise LookupError("no")

    await any_store.save("k", b'{"resumable":1,"v":1}', guard=record_and_allow)
    await any_store.save("k", b'{"resumable":1,"v":2}', guard=record_and_allow)
    with pytest.raises(LookupError):
        await any_store.save("k", b'{"resumable":1,"v":3}', guard=refuse)

    assert [None, b'{"resumable":1,"v":1}'] == seen
    assert b'{"resumable":1,"v":2}' == await any_store.load("k")


async def test_delete_forgets_and_tolerates_missing_keys(any_store: Store):
    """delete() removes the record; deleting again is not an error."""
    await any_store.save("k", b'{"resumable":1}')
    await any_store.delete("k")
    await any_store.delete("k")

    assert await any_store.load("k") is None


async def test_keys_lists_saved_keys_sorted(any_store: Store):
    """keys() returns every key with a record, sorted."""
    for key in ["b", "a.corrupt-1", "c(1)"]:
        await any_store.save(key, b'{"resumable":1}')
    await any_store.delete("b")

    assert ["a.corrupt-1", "c(1)"] == await any_store.keys()


@pytest.mark.parametrize("key", ["../escape", "a/b", "", "x" * 257, "nul\x00"])
async def test_keys_outside_the_rule_are_refused(any_store: Store, key: str):
    """Every store refuses keys that some store could not hold (or that name other files)."""
    with pytest.raises(InvalidKeyError):
        await any_store.save(key, b"{}")


async def test_a_job_runs_on_every_store(any_store: Store):
    """The engine works on the store, and a second run resumes from it."""
    async with job("contract", cursor=0, store=any_store, triggers=[]) as first:
        first.advance(3)
    async with job("contract", cursor=0, store=any_store, triggers=[]) as second:
        resumed = second.cursor

    assert 3 == resumed


async def test_file_store_writes_one_readable_file_per_key_and_no_leftovers(tmp_path: Path):
    """FileStore keeps DIR/KEY.json, plain JSON, with no temporary file left behind."""
    store = FileStore(tmp_path / "state")
    async with job("export-2024", cursor=0, store=store, triggers=[]) as j:
        j.advance(12)
    visible = sorted(p.name for p in (tmp_path / "state").iterdir() if not p.name.endswith(".lock"))

    assert ["export-2024.json"] == visible
    assert 12 == json.loads((tmp_path / "state" / "export-2024.json").read_text())["cursor"]


async def test_file_store_does_not_create_its_directory_to_read(tmp_path: Path):
    """Loading or listing a store that was never written creates nothing."""
    store = FileStore(tmp_path / "never")

    assert await store.load("k") is None
    assert [] == await store.keys()
    assert not (tmp_path / "never").exists()


async def test_file_store_fsyncs_the_file_and_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A save fsyncs the new file before the rename and the directory after it."""
    calls: list[str] = []
    real_fsync = os.fsync
    real_replace = Path.replace

    def fsync(fd: int) -> None:
        calls.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")  # noqa: PTH112
        real_fsync(fd)

    def replace(self: Path, target: Path) -> Path:
        calls.append("rename")
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    await FileStore(tmp_path).save("k", b"{}")

    assert ["file", "rename", "dir"] == calls


def test_file_store_repr_and_cli_location(tmp_path: Path):
    """Error messages name the store the way the CLI opens it."""
    store = FileStore(tmp_path)

    assert f"FileStore({str(tmp_path)!r})" == repr(store)
    assert str(tmp_path) == store.cli_location
