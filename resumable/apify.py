"""Apify Actors: cursors in the Actor's key-value store, saves on the platform's events.

Inside ``async with Actor:`` a job needs nothing from this module: with ``store=None`` it
uses `ApifyStore` on the Actor's default key-value store, and `ApifyEvents` and
`ApifyStatus` as triggers. Import the names to configure them::

    from resumable.apify import ApifyEvents, ApifyStore

    @resumable(store=ApifyStore(name="my-state"), triggers=[ApifyEvents(safety_margin=5)])
    async def crawl(*, cursor: int = 0): ...

Persistence policy inside an Actor: the job claims its key when it starts (one write), saves
on every ``persistState`` event the platform emits (once a minute by default, and only when
the cursor moved), on ``migrating`` and ``aborting``, and once at the end; there is no timer
of its own unless ``interval=`` is given. Key-value store writes cost money on the platform,
so a long run makes about one write a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import urllib.parse
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

try:
    from apify import Actor
    from apify.log import ActorLogFormatter
    from crawlee import service_locator
    from crawlee.configuration import Configuration
    from crawlee.events import Event, EventManager, EventMigratingData, EventPersistStateData
    from crawlee.storage_clients import FileSystemStorageClient
    from crawlee.storage_clients._file_system import FileSystemKeyValueStoreClient
    from crawlee.storages import KeyValueStore
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "resumable.apify needs the Apify SDK, which is not installed: "
        "pip install 'resumable[apify]'"
    ) from _missing

from resumable._codec import FORMAT_MARKER
from resumable._errors import ResumableWarning
from resumable._progress import abbreviated
from resumable._stores import Guard, check_key
from resumable._stores._files import exclusive_lock, fsync_directory, write_atomically

if TYPE_CHECKING:
    from resumable._controls import Controls
    from resumable._triggers import Detach, Trigger

__all__ = ["ApifyEvents", "ApifyStatus", "ApifyStore", "actor_defaults", "actor_is_running"]

log = logging.getLogger("resumable")

_JSON: Final = "application/json; charset=utf-8"
_BINARY: Final = "application/octet-stream"
_METADATA: Final = "__metadata__.json"


def actor_is_running() -> bool:
    """Return whether this code runs inside an initialized ``async with Actor:``.

    ``Actor`` is a lazy proxy: reading it before anything initialized it would build an
    instance, so an unresolved proxy is answered without touching it.
    """
    if not getattr(Actor, "__resolved__", True):
        return False
    return bool(getattr(Actor, "_active", False))


def actor_defaults() -> tuple[ApifyStore, list[Trigger]] | None:
    """Return the store and triggers a job uses by default inside a running Actor, else ``None``.

    The engine calls this (only when ``apify`` was imported) to resolve ``store=None`` and
    ``triggers=None``.
    """
    if not actor_is_running():
        return None
    _log_like_the_actor()
    return ApifyStore(), [ApifyEvents(), ApifyStatus()]


def _log_like_the_actor() -> None:
    """Show resumable's log lines in the Actor's log, formatted as the SDK's own.

    The SDK configures only its own loggers, so without this a job's "resuming from ..."
    lines would go nowhere. Logging the user configured is left alone.
    """
    ours = logging.getLogger("resumable")
    if ours.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(ActorLogFormatter())
    ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)
    ours.propagate = False


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
    that. The records stay readable through Crawlee (``await kvs.get_value(key)``).

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
        self._files: _LocalFiles | None = None
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
        kvs = await self.open()
        check_key(key, self)
        if self._files is not None:
            await self._files.save(key, data, guard)
            return
        if guard is not None:
            guard(await _load(kvs, key))
        value, content_type = _decoded(data)
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
        client = getattr(kvs, "_client", None)
        if not isinstance(client, FileSystemKeyValueStoreClient):
            return
        # Apify's client serves the input record under another file name (INPUT.json).
        reserved = {getattr(client, name, None) for name in ("_input_key", "_input_key_filename")}
        self._files = _LocalFiles(client.path_to_kvs, fsync=self._fsync, reserved=reserved - {None})
        configuration = self._configuration or service_locator.get_configuration()
        if kvs.name is None and configuration.purge_on_start and self._configuration is None:
            _warn_purge(client.path_to_kvs)


_warned_purge = False


def _warn_purge(directory: Path) -> None:
    global _warned_purge  # noqa: PLW0603 - one warning per process, however many jobs
    if _warned_purge:
        return
    _warned_purge = True
    warnings.warn(
        f"The key-value store in {directory} is purged each time the Actor starts locally "
        "(CRAWLEE_PURGE_ON_START is not false), so the job state resumable saves there is "
        "gone before a restarted run can resume from it. To resume a local run, start it with "
        "CRAWLEE_PURGE_ON_START=false (and reset a job with `python -m resumable --store "
        f"apify:{directory.parent.parent} reset KEY`). On the Apify platform this does not apply.",
        ResumableWarning,
        stacklevel=4,
    )


async def _load(kvs: KeyValueStore, key: str) -> bytes | None:
    value = await kvs.get_value(key)
    if value is None:
        # Crawlee's clients log and return None for a value they cannot decode.
        return b"" if await kvs.record_exists(key) else None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _decoded(data: bytes) -> tuple[Any, str]:
    """Return what to hand a key-value store for *data*: JSON as JSON, anything else as bytes."""
    try:
        return json.loads(data), _JSON
    except ValueError:
        return bytes(data), _BINARY


class _LocalFiles:
    """Reads and writes records in a Crawlee file-system key-value store directory.

    The layout is Crawlee's: the value in ``DIR/<quoted key>`` and, beside it,
    ``<quoted key>.__metadata__.json`` holding ``{"key", "content_type", "size"}``.
    """

    def __init__(self, directory: Path, *, fsync: bool, reserved: set[Any]) -> None:
        self.directory = directory
        self.fsync = fsync
        self.reserved = reserved

    def _path(self, key: str) -> Path:
        if key in self.reserved:
            raise ValueError(f"Key {key!r} is the Actor's input record; give the job another key.")
        return self.directory / urllib.parse.quote(key, safe="")

    def load(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def save(self, key: str, data: bytes, guard: Guard | None) -> None:
        path = self._path(key)
        meta = path.with_name(f"{path.name}.{_METADATA}")
        metadata = json.dumps(
            {"key": key, "content_type": _decoded(data)[1], "size": len(data)}, indent=2
        ).encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        async with self._locked():
            if guard is not None:
                guard(self.load(key))
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
        path = self._path(key)
        if not self.directory.is_dir():
            return
        async with self._locked():
            removed = False
            for victim in (path, path.with_name(f"{path.name}.{_METADATA}")):
                with contextlib.suppress(FileNotFoundError):
                    victim.unlink()
                    removed = True
            if removed and self.fsync:
                fsync_directory(self.directory)

    def keys(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        found = []
        for meta in self.directory.glob(f"*.{_METADATA}"):
            name = meta.name[: -len(f".{_METADATA}")]
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
        tmp = path.with_name(f".{path.name}.resumable-tmp")
        write_atomically(path, data, tmp=tmp, fsync=self.fsync)

    def _locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold an exclusive lock on the store's directory (no lock file to clutter it)."""
        return exclusive_lock(self.directory, create=False, what=str(self.directory))


class ApifyEvents:
    """Saves, stops and aborts a job on the Apify platform's events, through ``Actor.on``.

    - ``migrating``: persist the latest cursor at once, retrying a failing store only within
      the event's ``timeRemainingSecs`` minus *safety_margin*, then stop taking new work and
      wait for the platform to stop the process. ``Actor.reboot()`` fires the same listener,
      so a reboot is a checkpoint too.
    - ``persistState``: ask for a save of the latest cursor (coalesced with other saves); the
      copy the SDK emits right after ``migrating`` (``isMigrating``) is left to the
      migration.
    - ``aborting``: persist, close the generator and end the run ``"aborted"``.

    Each job gets its own listeners, removed when it ends, so jobs running side by side in
    one Actor do not interfere.

    Args:
        safety_margin: Seconds kept back from the migration's time budget.
        fallback_budget: The budget when the event does not say how much time is left (as
            from ``Actor.reboot()``, which waits 5 s for its listeners).
        event_manager: Listen here instead of on the running Actor's event manager (for
            Crawlee programs without an Actor, and for tests).
    """

    drives_periodic_saves: ClassVar[bool] = True
    """``persistState`` events drive the periodic saves: the engine runs no timer of its own."""

    loop_bound: ClassVar[bool] = True
    """The events arrive on the Actor's event loop: a plain generator's job refuses them."""

    def __init__(
        self,
        *,
        safety_margin: float = 2.0,
        fallback_budget: float = 4.0,
        event_manager: EventManager | None = None,
    ) -> None:
        self.safety_margin = safety_margin
        self.fallback_budget = fallback_budget
        self.event_manager = event_manager

    def __repr__(self) -> str:
        return (
            f"ApifyEvents(safety_margin={self.safety_margin}, "
            f"fallback_budget={self.fallback_budget})"
        )

    def budget(self, time_remaining: timedelta | None) -> float:
        """Return the seconds a migration save may take when *time_remaining* is left."""
        if time_remaining is None:
            return self.fallback_budget
        remaining = time_remaining.total_seconds()
        return max(remaining - self.safety_margin, remaining / 2, 0.5)

    def attach(self, job: Controls) -> Detach:
        """Listen to the platform's events for *job* until the returned callable is called."""

        async def on_migrating(data: EventMigratingData) -> None:
            await job.migrate(self.budget(data.time_remaining))

        async def on_persist_state(data: EventPersistStateData) -> None:
            if not data.is_migrating:
                job.request_save()

        async def on_aborting() -> None:
            await job.abort("the platform is aborting the run (Apify `aborting` event)")

        listeners: list[tuple[Event, Callable[..., Any]]] = [
            (Event.MIGRATING, on_migrating),
            (Event.PERSIST_STATE, on_persist_state),
            (Event.ABORTING, on_aborting),
        ]
        manager = self.event_manager
        if manager is None:
            if not actor_is_running():
                raise RuntimeError(
                    f"ApifyEvents for job {job.key!r} listens to the Actor's events, but no "
                    "Actor is running: start the job inside `async with Actor:`, or pass "
                    "ApifyEvents(event_manager=...)."
                )
            manager = Actor.event_manager
            for event, listener in listeners:
                Actor.on(event, listener)
        else:
            for event, listener in listeners:
                manager.on(event=event, listener=listener)
        unhook = _pause_on_emit(manager, job)

        def detach() -> None:
            unhook()
            for event, listener in listeners:
                manager.off(event=event, listener=listener)

        return detach


def _pause_on_emit(manager: EventManager, job: Controls) -> Detach:
    """Pause *job* the moment *manager* emits ``migrating``, before any listener runs.

    The event manager runs each listener in a task of its own, so the job's task, already
    scheduled, would start one more item before ``on_migrating`` could stop it. Wrapping
    ``emit`` on this instance stops it synchronously; the listener then saves.
    """
    original = manager.emit
    earlier = manager.__dict__.get("emit")  # another job's hook, or None
    active = True

    def emit(*, event: Event, event_data: Any) -> None:
        if active and event == Event.MIGRATING:
            job.pause()
        original(event=event, event_data=event_data)

    manager.__dict__["emit"] = emit

    def unhook() -> None:
        nonlocal active
        active = False  # a hook with a later one on top of it stays, as a pass-through
        if manager.__dict__.get("emit") is emit:
            if earlier is None:
                del manager.__dict__["emit"]
            else:
                manager.__dict__["emit"] = earlier

    return unhook


class ApifyStatus:
    """Shows the job's progress as the Actor run's status message in the Apify console.

    Every *interval* seconds, and only when something changed, a timer sets a message such
    as ``crawl: 12,345 done this run (41.2/s), saved at 12,300``. It reads the job's counters
    and never touches the job's hot path. Jobs running side by side share one message, a
    line each. A failing update is logged once and tried again at the next tick. Outside
    the platform the SDK logs the message instead.

    Args:
        interval: Seconds between updates (the platform rate-limits API calls).
    """

    def __init__(self, *, interval: float = 15.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval= must be a positive number of seconds, not {interval!r}")
        self.interval = interval

    def __repr__(self) -> str:
        return f"ApifyStatus(interval={self.interval})"

    def attach(self, job: Controls) -> Detach:
        """Report *job*'s progress until the returned callable is called."""
        entry = _board.add(job, self.interval)
        return lambda: _board.remove(entry)


class _Progress:
    """One job on the status board, with what the rate is measured from."""

    def __init__(self, job: Controls, interval: float) -> None:
        self.job = job
        self.interval = interval
        self.since = time.monotonic()
        self.yields = job.yields

    def line(self, now: float) -> str:
        job = self.job
        elapsed = now - self.since
        rate = (job.yields - self.yields) / elapsed if elapsed > 0 else 0.0
        self.since, self.yields = now, job.yields
        saved = abbreviated(job.persisted, 60)
        state = ", stopping" if job.stopping else ""
        return f"{job.key}: {job.yields:,} done this run ({rate:.1f}/s), saved at {saved}{state}"


class _StatusBoard:
    """The one status message of the Actor run, shared by the jobs that report to it."""

    def __init__(self) -> None:
        self._entries: list[_Progress] = []
        self._task: asyncio.Task[None] | None = None
        self._last = ""
        self._failed = False

    def add(self, job: Controls, interval: float) -> _Progress:
        entry = _Progress(job, interval)
        self._entries.append(entry)
        job.refresh()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="resumable-apify-status"
            )
        return entry

    def remove(self, entry: _Progress) -> None:
        with contextlib.suppress(ValueError):
            self._entries.remove(entry)
        if not self._entries and self._task is not None:
            self._task.cancel()
            self._task = None
            self._last = ""

    async def _run(self) -> None:
        while self._entries:
            interval = min(entry.interval for entry in self._entries)
            await asyncio.sleep(interval)
            now = time.monotonic()
            message = "\n".join(entry.line(now) for entry in self._entries)
            for entry in self._entries:
                entry.job.refresh()  # counts are published lazily: fresh for the next tick
            if message == self._last or not actor_is_running():
                continue
            self._last = message
            try:
                async with asyncio.timeout(interval):
                    await Actor.set_status_message(message)
            except Exception as exc:  # noqa: BLE001 - progress display must never break a job
                level = logging.DEBUG if self._failed else logging.WARNING
                self._failed = True
                log.log(level, "could not set the Actor's status message: %r", exc)
            else:
                self._failed = False


_board = _StatusBoard()
