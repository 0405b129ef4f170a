"""Fault injection: FileStore under crashes, a full disk, a read-only directory, and a race.

The crash and race tests run real child processes (tests/fault_child.py) that SIGKILL
themselves at a chosen file-system step, or race each other for one key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resumable import FileStore, StoreError, job
from resumable._envelope import parse
from resumable.testing import FailingStore, fast_timing

CHILD = Path(__file__).with_name("fault_child.py")
KEY = "k"


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def write_first_record(directory: Path) -> None:
    """A finished run at cursor 1: the record the crash tests start from."""
    async with job(KEY, cursor=0, store=FileStore(directory), triggers=[], interval=None) as j:
        j.advance(1)


def load(directory: Path) -> dict[str, Any]:
    store = FileStore(directory)
    return parse(store.path(KEY).read_bytes(), KEY, store)


@pytest.fixture(scope="module")
def save_steps(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file-system steps of one FileStore save, as the child process saw them."""
    directory = tmp_path_factory.mktemp("steps") / "state"
    asyncio.run(write_first_record(directory))
    result = run_child("crash", str(directory), "-1")
    assert not result.returncode, result.stderr
    steps: list[str] = json.loads(result.stdout)
    return steps


def test_a_save_writes_and_fsyncs_a_temporary_file_then_renames_then_fsyncs_the_directory(
    save_steps: list[str], tmp_path: Path
) -> None:
    """The order that makes a save durable: fsync the data before the rename, the directory after.

    A SIGKILL cannot show a missing fsync (the page cache survives the process), so this
    pins the order of the steps instead: a power cut can only lose what was not fsynced.
    """
    directory = "state"
    expected = [
        f"open .{KEY}.lock",
        f"open .{KEY}.json.tmp",
        f"write .{KEY}.json.tmp",
        f"fsync .{KEY}.json.tmp",
        f"close .{KEY}.json.tmp",
        f"replace .{KEY}.json.tmp {KEY}.json",
        f"open {directory}",
        f"fsync {directory}",
        f"close {directory}",
        f"close .{KEY}.lock",
    ]

    assert expected == save_steps


def crash_cases() -> Iterator[Any]:
    for kill_at in range(11):
        yield pytest.param(kill_at, False, id=f"before-step-{kill_at}")
    yield pytest.param(2, True, id="torn-write")


@pytest.mark.slow
@pytest.mark.parametrize(("kill_at", "torn"), list(crash_cases()))
async def test_a_crash_at_any_step_of_a_save_leaves_the_old_or_the_new_record(
    save_steps: list[str], tmp_path: Path, kill_at: int, torn: bool
) -> None:
    """SIGKILL before each step of a save (or halfway through its write): the record loads.

    Before the rename it is the old record, from the rename on the new one; either way the
    next run takes the key over and resumes from it.
    """
    directory = tmp_path / "state"
    await write_first_record(directory)

    result = run_child("crash", str(directory), str(kill_at), *(["torn"] if torn else []))
    record = load(directory)
    renamed = kill_at > next(i for i, s in enumerate(save_steps) if s.startswith("replace"))
    expected = (2, 4) if renamed else (1, 3)

    assert -signal.SIGKILL == result.returncode, result.stderr
    assert expected == (record["cursor"], record["seq"])
    async with job(KEY, cursor=0, store=FileStore(directory), triggers=[], interval=None) as j:
        resumed = j.cursor
        j.advance(resumed + 1)
    assert expected[0] == resumed
    assert [KEY] == await FileStore(directory).keys()
    assert (resumed + 1, "completed") == (load(directory)["cursor"], load(directory)["status"])


# -- a full disk ------------------------------------------------------------------------------


class FullDisk:
    """Makes the file system report ENOSPC for FileStore's temporary files, at one step."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
        self.step = step
        self.full = False
        self.temporary: set[int] = set()
        self.writes = 0
        real_open, real_write = os.open, os.write
        real_fsync, real_close = os.fsync, os.close

        def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
            fd = real_open(path, flags, mode, **kwargs)
            if str(path).endswith(".tmp"):
                self.temporary.add(fd)
            return fd

        def write(fd: int, data: Any) -> int:
            if self.hits(fd, "write"):
                raise self.error()
            if self.hits(fd, "partial-write"):
                self.writes += 1
                if self.writes > 1:
                    raise self.error()
                return real_write(fd, bytes(data)[: len(data) // 2])
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            if self.hits(fd, "fsync"):
                raise self.error()
            real_fsync(fd)

        def close(fd: int) -> None:
            temporary = fd in self.temporary
            self.temporary.discard(fd)
            real_close(fd)
            if temporary and self.full and self.step == "close":
                raise self.error()

        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "close", close)

    def hits(self, fd: int, step: str) -> bool:
        return self.full and self.step == step and fd in self.temporary

    def error(self) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("step", ["write", "partial-write", "fsync", "close"])
async def test_a_full_disk_gives_store_error_and_keeps_the_previous_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, step: str
) -> None:
    """ENOSPC at any step of writing the temporary file: StoreError, the old record intact,
    and no temporary file left behind."""
    store = FileStore(tmp_path / "state")
    disk = FullDisk(monkeypatch, step)
    async with job(KEY, cursor=0, store=store, triggers=[], interval=None) as j:
        j.advance(1)
        await j.save()
        before = store.path(KEY).read_bytes()
        disk.full = True
        j.advance(2)
        with pytest.raises(StoreError, match=r"'k' in FileStore\(.*No space left") as caught:
            await j.save(timeout=0.1)
        after = store.path(KEY).read_bytes()
        leftovers = sorted(p.name for p in store.directory.glob("*.tmp"))
        disk.full = False
    cause = caught.value.__cause__

    assert [] == leftovers
    assert before == after
    assert isinstance(cause, OSError)
    assert errno.ENOSPC == cause.errno
    assert (2, "completed") == (load(store.directory)["cursor"], load(store.directory)["status"])
    assert [KEY] == await store.keys()


# -- a read-only directory --------------------------------------------------------------------


@contextlib.contextmanager
def permissions(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Take the write permission away (as root this stops nothing: root ignores it)."""
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits; the immutable and EROFS cases cover root")
    directory.chmod(0o500)
    try:
        yield
    finally:
        directory.chmod(0o755)


@contextlib.contextmanager
def immutable(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the directory immutable (chattr +i): no new file in it, not even for root."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    if subprocess.run([chattr, "+i", str(directory)], capture_output=True, check=False).returncode:
        pytest.skip("this file system or user cannot set the immutable attribute")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


@contextlib.contextmanager
def read_only_file_system(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Answer EROFS to every file created in the directory, as a read-only mount does."""
    real_open = os.open

    def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & (os.O_CREAT | os.O_WRONLY) and Path(path).parent == directory:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, mode, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_)
        yield


@pytest.mark.parametrize("make_read_only", [permissions, immutable, read_only_file_system])
async def test_a_read_only_directory_gives_store_error_and_keeps_the_previous_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_read_only: Any
) -> None:
    """A directory that refuses new files: StoreError, the old record intact, then recovery.

    Tests run as root, where chmod stops nothing; so the directory is made immutable
    (``chattr +i``, which binds root too) where the file system allows it, and a read-only
    mount is simulated (``os.open`` answers EROFS) everywhere.
    """
    directory = tmp_path / "state"
    store = FileStore(directory)
    async with job(KEY, cursor=0, store=store, triggers=[], interval=None) as j:
        j.advance(1)
        await j.save()
        before = store.path(KEY).read_bytes()
        with make_read_only(directory, monkeypatch):
            j.advance(2)
            with pytest.raises(StoreError, match=r"'k' in FileStore\(") as caught:
                await j.save(timeout=0.1)
            after = store.path(KEY).read_bytes()

    assert before == after
    assert isinstance(caught.value.__cause__, OSError)
    assert (2, "completed") == (load(directory)["cursor"], load(directory)["status"])


# -- two processes, one key -------------------------------------------------------------------


async def read_line(stream: asyncio.StreamReader, deadline: float) -> str:
    line = await asyncio.wait_for(stream.readline(), max(deadline - time.monotonic(), 0.01))
    return line.decode().strip()


async def lines_until(stream: asyncio.StreamReader, wanted: str, deadline: float) -> list[str]:
    lines: list[str] = []
    while not lines or lines[-1] != wanted:
        line = await read_line(stream, deadline)
        if not line:
            raise AssertionError(f"the child ended before printing {wanted!r}: {lines}")
        lines.append(line)
    return lines


@pytest.mark.slow
async def test_two_processes_racing_for_a_key_never_lose_the_newer_progress(
    tmp_path: Path,
) -> None:
    """A second process takes the key over while the first is mid-save.

    The takeover waits for that save (the key's file lock), resumes from it, and its
    progress stays: the first process's next save fails with StaleWriterError.
    """
    directory = tmp_path / "state"
    deadline = time.monotonic() + 30
    first = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "race-first", str(directory), stdout=subprocess.PIPE
    )
    assert first.stdout is not None
    await lines_until(first.stdout, "window", deadline)
    second = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "race-second", str(directory), stdout=subprocess.PIPE
    )
    second_out, _ = await asyncio.wait_for(second.communicate(), 30)
    first_out, _ = await asyncio.wait_for(first.communicate(), 30)
    claimed = second_out.decode().split()
    record = load(directory)

    assert ["saved", "4", "stale"] == first_out.decode().split()
    assert (0, 3) == (second.returncode, first.returncode)
    assert ["claimed", "4"] == claimed[:2]
    assert (14, "completed", claimed[2]) == (record["cursor"], record["status"], record["owner"])


# -- a store that hangs -----------------------------------------------------------------------


async def test_the_last_save_is_bounded_in_time_when_the_store_hangs() -> None:
    """A store that stops answering cannot hold a job's exit past the save timeout.

    House style: "the last save is shielded and bounded in time" — a pod's grace period,
    or a migration's, is seconds long.
    """
    with fast_timing(save=0.2):
        store = FailingStore()
        try:
            async with asyncio.timeout(1.5):
                with pytest.raises(StoreError):
                    async with job(KEY, cursor=0, store=store, triggers=[], interval=None) as j:
                        j.advance(1)
                        store.forever, store.delay = True, 3600.0
        finally:
            stuck = asyncio.all_tasks() - {asyncio.current_task()}
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
