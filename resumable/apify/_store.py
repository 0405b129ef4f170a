"""`ApifyStore`: job records in a Crawlee/Apify key-value store, as JSON."""

from __future__ import annotations

import os
from typing import ClassVar

from apify import Actor
from crawlee import service_locator
from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient
from crawlee.storages import KeyValueStore

from resumable._envelope import FORMAT_MARKER
from resumable._stores import Change, Guard, check_key, guarded
from resumable.apify._content import decoded, encoded
from resumable.apify._local_files import LocalFiles
from resumable.apify._purge import warn_if_purged
from resumable.apify._sdk import actor_is_running, local_layout, quiet_absence

__all__ = ["ApifyStore"]


class ApifyStore:
    """Keeps each key's record in a Crawlee/Apify `KeyValueStore`, as JSON.

    Records are stored with content type ``application/json``, so the Apify console shows
    them as readable JSON. Any key-value store works: the Actor's default one (``kvs=None``),
    a named one (``name=``), or one you opened yourself, on any Crawlee storage backend (the
    platform, the local file system, memory, SQL, Redis).

    On the local file-system backend a save skips Crawlee's client: it writes the record
    file and its metadata file exactly as Crawlee lays them out, each to a temporary file
    that is fsynced and renamed into place, fsyncs the directory, and does it on the event
    loop's thread. Crawlee's own client needs about eight thread hops per write, each of
    which waits for the GIL behind a busy job, and never fsyncs; a migration cannot wait for
    that. The records stay readable through Crawlee (``await kvs.get_value(key)``). Keys
    that no file can be named after there (``.``, ``..``, the Actor's ``INPUT``, keys whose
    file names would pass 255 bytes) are refused at once with `InvalidKeyError`.

    Fencing: a save reads the current record, lets the engine check that this run still
    owns the key, then writes. On the local file system that read-check-write holds an
    exclusive lock on the store's directory, so it is atomic against every resumable writer
    on the machine. Other backends offer no conditional write, so another run that writes
    between the read and the write (a window of one round trip) is not detected; the next
    save of the first run then sees the takeover and stops.

    Args:
        kvs: The key-value store to use; opened lazily when not given.
        name: Open the named key-value store instead of the Actor's default one.
        fsync: On the local file system, flush every save to the disk.
    """

    loop_bound: ClassVar[bool] = True
    """Its storage client belongs to the Actor's event loop: a plain generator's job refuses it."""

    def __init__(
        self, kvs: KeyValueStore | None = None, *, name: str | None = None, fsync: bool = True
    ) -> None:
        if kvs is not None and name is not None:
            raise TypeError("ApifyStore takes a key-value store or a name=, not both")
        self._kvs = kvs
        self._name = name
        self._fsync = fsync
        self._configuration: Configuration | None = None
        self._storage_client: FileSystemStorageClient | None = None
        self._files: LocalFiles | None = None
        self._inspected = False

    @classmethod
    def local(
        cls, storage_dir: str | os.PathLike[str] = "./storage", *, name: str | None = None
    ) -> ApifyStore:
        """Return a store on the default (or named) key-value store of local storage in a directory.

        This reads what an Actor run locally (or a test's stand-in platform) left in
        ``storage_dir``, without an Actor and without purging it.
        """
        store = cls(name=name)
        store._configuration = Configuration(storage_dir=str(storage_dir), purge_on_start=False)
        store._storage_client = FileSystemStorageClient()
        return store

    def __repr__(self) -> str:
        if self._files is not None:
            return f"ApifyStore({str(self._files.directory)!r})"
        if self._kvs is not None:
            return f"ApifyStore(<key-value store {self._kvs.name or self._kvs.id}>)"
        return f"ApifyStore(name={self._name!r})" if self._name else "ApifyStore(<default>)"

    @property
    def kvs(self) -> KeyValueStore | None:
        """The key-value store, once it is open."""
        return self._kvs

    @property
    def cli_location(self) -> str | None:
        """The ``--store`` argument of the command line that opens this store, if there is one.

        Only the default key-value store of local storage has one: ``apify:STORAGE_DIR``.
        """
        if self._files is None or self._kvs is None or self._kvs.name is not None:
            return None
        if self._files.directory.name != "default":
            return None
        return f"apify:{self._files.directory.parent.parent}"

    async def open(self) -> KeyValueStore:
        """Open the key-value store now (a job does this when it starts); return it.

        Opening the Actor's default store is a platform request: better at the start of a
        job than inside a migration handler.
        """
        if self._kvs is None:
            if self._storage_client is not None:
                self._kvs = await KeyValueStore.open(
                    name=self._name,
                    configuration=self._configuration,
                    storage_client=self._storage_client,
                )
            elif actor_is_running():
                self._kvs = await Actor.open_key_value_store(name=self._name)
            else:
                self._kvs = await KeyValueStore.open(name=self._name)
        if not self._inspected:
            self._inspected = True
            self._inspect(self._kvs)
        return self._kvs

    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None`` if there is none.

        A record that the store holds but cannot read back is returned as ``b""``, so the
        engine reports it as corrupt instead of starting over it.
        """
        kvs = await self.open()
        check_key(key, self)
        if self._files is not None:
            return self._files.load(key)
        return await _load(kvs, key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Store *data* under *key* as JSON, after *guard* accepts the current record."""
        await self.update(key, guarded(data, guard))

    async def update(self, key: str, change: Change) -> None:
        """Store what *change* makes of *key*'s record.

        Atomic on local files (under the directory's lock); on the other backends the read
        and the write are two calls, the window that the fencing page measures.
        """
        kvs = await self.open()
        check_key(key, self)
        if self._files is not None:
            await self._files.update(key, change)
            return
        data = change(await _load(kvs, key))
        value, content_type = decoded(data)
        await kvs.set_value(key, value, content_type=content_type)

    async def delete(self, key: str) -> None:
        """Delete the record under *key*, if any."""
        kvs = await self.open()
        check_key(key, self)
        if self._files is not None:
            await self._files.delete(key)
            return
        await kvs.delete_value(key)

    async def keys(self) -> list[str]:
        """Return the keys that hold resumable records, sorted (other records are skipped)."""
        kvs = await self.open()
        if self._files is not None:
            return self._files.keys()
        found = []
        async for key, value in kvs.iterate_entries():
            if isinstance(value, dict) and FORMAT_MARKER in value:
                found.append(key)
        return sorted(found)

    def _inspect(self, kvs: KeyValueStore) -> None:
        """Choose the direct file path when the backend is the local file system; warn on purge."""
        layout = local_layout(kvs)
        if layout is None:
            return
        self._files = LocalFiles(
            layout.directory, fsync=self._fsync, reserved=layout.reserved, owner=self
        )
        if kvs.name is None and self._configuration is None:
            warn_if_purged(
                layout.directory,
                service_locator.get_configuration(),
                self._files.keys,
                in_actor=actor_is_running(),
            )


async def _load(kvs: KeyValueStore, key: str) -> bytes | None:
    with quiet_absence(key):
        value = await kvs.get_value(key)
    if value is None:
        # Crawlee's clients log and return None for a value they cannot decode.
        return b"" if await kvs.record_exists(key) else None
    return encoded(value)
