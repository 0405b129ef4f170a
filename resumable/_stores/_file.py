"""`FileStore`: one crash-safe JSON file per key in a directory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from resumable._stores._base import Change, Guard, check_key, guarded
from resumable._stores._files import exclusive_lock, fsync_directory, remove, write_atomically


class FileStore:
    """Keeps each key's record in ``DIRECTORY/KEY.json``.

    A save writes a temporary file, fsyncs it, renames it over the record and fsyncs the
    directory, so a crash at any instant leaves the old record or the new one, never a torn
    one. Saves of one key are serialized across processes by an OS file lock
    (``.KEY.lock``), which makes the fencing check and the write one atomic step on this
    machine. The I/O runs on the event loop's thread: a record is small, and a thread hop
    would wait behind a busy loop exactly when a save is most urgent.

    Args:
        directory: Where the records live (relative to the current directory when the
            store is made); created on the first save.
        fsync: Flush every save to the disk. Turn off only for throwaway state.
    """

    max_key_length = 240
    """Longer keys would overflow a file name (255 bytes) with the temporary file's suffix."""

    def __init__(self, directory: str | os.PathLike[str] = ".resumable", *, fsync: bool = True):
        # Resolved now: a job that changes directory while it runs keeps writing one place.
        self.directory = Path(directory).absolute()
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    @property
    def cli_location(self) -> str:
        """The ``--store`` argument of the command line that opens this store."""
        return str(self.directory)

    def path(self, key: str) -> Path:
        """Return the file that holds *key*'s record."""
        return self.directory / f"{check_key(key, self)}.json"

    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None`` if there is no file."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Atomically replace *key*'s record with *data*, after *guard* accepts the current one."""
        await self.update(key, guarded(data, guard))

    async def update(self, key: str, change: Change) -> None:
        """Replace *key*'s record with what *change* makes of it, under the key's lock."""
        path = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        async with self._locked(key):
            try:
                current: bytes | None = path.read_bytes()
            except FileNotFoundError:
                current = None
            data = change(current)
            tmp = self.directory / f".{key}.json.tmp"
            write_atomically(path, data, tmp=tmp, fsync=self.fsync)
            if self.fsync:
                fsync_directory(self.directory)

    async def delete(self, key: str) -> None:
        """Remove *key*'s record file, if any."""
        path = self.path(key)
        if not self.directory.is_dir():
            return
        async with self._locked(key):
            remove(self.directory, path, fsync=self.fsync)

    async def keys(self) -> list[str]:
        """Return the keys that have a record file, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in self.directory.glob("*.json"))

    def _locked(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        return exclusive_lock(
            self.directory / f".{key}.lock", create=True, what=f"key {key!r} of {self!r}"
        )
