"""Records in a Crawlee file-system key-value store directory, written without Crawlee's client.

The layout is Crawlee's: the value in ``DIR/<quoted key>`` and, beside it,
``<quoted key>.__metadata__.json`` holding ``{"key", "content_type", "size"}``. Each file is
replaced atomically (temporary file, fsync, rename) under an exclusive lock on the directory,
on the event loop's thread.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from pathlib import Path
from typing import Final

from resumable._envelope import FORMAT_MARKER
from resumable._errors import InvalidKeyError
from resumable._stores import Change
from resumable._stores._files import exclusive_lock, fsync_directory, remove, write_atomically
from resumable.apify._content import decoded

METADATA: Final = "__metadata__.json"
_TEMPORARY: Final = ".resumable-tmp"
NAME_MAX: Final = 255
"""Bytes in a file name on the file systems Actors run on (ext4, overlayfs, APFS, tmpfs)."""


class LocalFiles:
    """Reads and writes the records of one Crawlee file-system key-value store directory.

    Args:
        directory: The key-value store's directory.
        fsync: Flush every write to the disk.
        reserved: Keys that the backend keeps under another file name (the Actor's input).
        owner: The store these files belong to, named in error messages.
    """

    def __init__(
        self, directory: Path, *, fsync: bool, reserved: frozenset[str], owner: object
    ) -> None:
        self.directory = directory
        self.fsync = fsync
        self.reserved = reserved
        self.owner = owner

    def path(self, key: str) -> Path:
        """Return the file of *key*'s record.

        Raises:
            InvalidKeyError: The file system cannot hold a record under *key* in Crawlee's
                layout (the input record's key, ``.`` and ``..``, a file name too long).
        """
        name = urllib.parse.quote(key, safe="")
        if key in self.reserved:
            raise InvalidKeyError(
                f"Key {key!r} is the Actor's input record in {self.owner!r}; give the job "
                "another key (key=...)."
            )
        if name in {".", ".."}:
            raise InvalidKeyError(
                f"Key {key!r} cannot be stored in {self.owner!r}: on local storage a record is "
                f"a file named after its key, and {key!r} names a directory. Give the job "
                "another key (key=...), one with a letter or digit in it."
            )
        longest = f".{name}.{METADATA}{_TEMPORARY}"
        if len(longest.encode()) > NAME_MAX:
            overhead = len(longest) - len(name)
            raise InvalidKeyError(
                f"Key {key!r} ({len(key)} characters) is too long for {self.owner!r}: on local "
                f"storage its record's metadata file needs a name of {len(longest)} bytes "
                f"({overhead} more than the key's {len(name)}; each character other than "
                f"a-z, A-Z, 0-9, '-', '_' and '.' takes three), and a file name holds "
                f"{NAME_MAX}. Give the job a key of at most {NAME_MAX - overhead} such "
                "characters (key=...), e.g. with a hash of the long part."
            )
        return self.directory / name

    def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None``."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def update(self, key: str, change: Change) -> None:
        """Write what *change* makes of *key*'s record, and its metadata, under the lock."""
        path = self.path(key)
        meta = path.with_name(f"{path.name}.{METADATA}")
        self.directory.mkdir(parents=True, exist_ok=True)
        async with self._locked():
            data = change(self.load(key))
            metadata = json.dumps(
                {"key": key, "content_type": decoded(data)[1], "size": len(data)}, indent=2
            ).encode()
            self._write(path, data)
            try:
                unchanged = meta.read_bytes() == metadata
            except FileNotFoundError:
                unchanged = False
            if not unchanged:
                self._write(meta, metadata)
            if self.fsync:
                fsync_directory(self.directory)

    async def delete(self, key: str) -> None:
        """Remove the record under *key* and its metadata, if any."""
        path = self.path(key)
        if not self.directory.is_dir():
            return
        async with self._locked():
            meta = path.with_name(f"{path.name}.{METADATA}")
            remove(self.directory, path, meta, fsync=self.fsync)

    def keys(self) -> list[str]:
        """Return the keys that hold resumable records, sorted."""
        if not self.directory.is_dir():
            return []
        found = []
        for meta in self.directory.glob(f"*.{METADATA}"):
            name = meta.name[: -len(f".{METADATA}")]
            key = urllib.parse.unquote(name)
            try:
                record = json.loads((self.directory / name).read_bytes())
            except (FileNotFoundError, ValueError):
                continue
            if isinstance(record, dict) and FORMAT_MARKER in record:
                found.append(key)
        return sorted(found)

    def _write(self, path: Path, data: bytes) -> None:
        """Replace *path* with *data* atomically: temporary file, fsync, rename."""
        tmp = path.with_name(f".{path.name}{_TEMPORARY}")
        write_atomically(path, data, tmp=tmp, fsync=self.fsync)

    def _locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold an exclusive lock on the store's directory (no lock file to clutter it)."""
        return exclusive_lock(self.directory, create=False, what=str(self.directory))
