"""Crash-safe file primitives for the stores that write files themselves."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

LOCK_TIMEOUT = 30.0
"""Seconds to wait for another process's lock before a save fails (and is retried)."""


def write_atomically(path: Path, data: bytes, *, tmp: Path, fsync: bool) -> None:
    """Replace *path* with *data*: write *tmp*, fsync it, rename it over *path*.

    A crash at any instant leaves the old file or the new one. The rename is durable once
    the directory is fsynced too (`fsync_directory`), which the caller does after its last
    rename. Callers serialize writers (`exclusive_lock`): *tmp* is reused.
    """
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except BaseException:
        # A full disk or a failed rename must not leave a half-written temporary file behind.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove(directory: Path, *paths: Path, fsync: bool) -> None:
    """Remove whichever of *paths* exist, and make that durable (callers hold the lock)."""
    removed = False
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
    if removed and fsync:
        fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make the renames and unlinks done in *directory* durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LockWait:
    """Paces the tries at a lock that another process holds, without blocking the loop.

    Tries come every few milliseconds at most: a process that saves back to back frees
    its lock for moments only, and a waiter that backs off further would rarely see one.

    Args:
        what: Names the lock in the error when it stays taken.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._deadline = time.monotonic() + LOCK_TIMEOUT
        self._delay = 0.0005

    async def pause(self) -> None:
        """Wait before the next try.

        Raises:
            TimeoutError: The lock stayed taken for `LOCK_TIMEOUT` seconds.
        """
        if time.monotonic() > self._deadline:
            raise TimeoutError(
                f"could not lock {self.what} within {LOCK_TIMEOUT:.0f} s: another process holds it"
            )
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, 0.002)


@contextlib.asynccontextmanager
async def exclusive_lock(path: Path, *, create: bool, what: str) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on *path* across processes, without blocking the loop.

    Args:
        path: A lock file (made if *create*) or a directory to lock.
        create: Whether *path* is a lock file to create if missing.
        what: Names the lock in the error when another process holds it too long.

    Raises:
        TimeoutError: Another process held the lock for `LOCK_TIMEOUT` seconds.
    """
    flags = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
    fd = os.open(path, flags, 0o644)
    try:
        wait = LockWait(what)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await wait.pause()
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
