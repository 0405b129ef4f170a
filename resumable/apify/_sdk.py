"""Every use of the Apify SDK's and Crawlee's private internals, and nowhere else.

Each function here reaches into something the SDK does not promise to keep: whether the
``Actor`` proxy is resolved and active, the client behind a `KeyValueStore` or a `Dataset`,
the classes of Crawlee's file-system clients, the input record's file name, a local dataset's
item count, and the event manager's ``emit``. Each is pinned by a test
(``tests/test_apify_sdk.py``) that fails when the SDK moves it, and each falls back loudly,
with a `ResumableWarning` once per process that says what is lost and what to do, instead of
silently losing fsync, locking, an early pause or a local dataset's items.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apify import Actor
from crawlee.events import Event, EventManager
from crawlee.storages import KeyValueStore

from resumable._errors import ResumableWarning

__all__ = ["LocalLayout", "actor_is_running", "hook_emit", "local_layout", "mend_local_count"]

_FILE_SYSTEM_CLIENT_MODULE = "crawlee.storage_clients._file_system"
_INPUT_KEY_ATTRIBUTES = ("_input_key", "_input_key_filename")


@functools.cache
def _warn_once(what: str, consequence: str) -> None:
    """Warn that the installed SDK moved *what*, and say what that costs (once per process)."""
    warnings.warn(
        f"resumable could not find {what} in the installed Apify SDK / Crawlee: {consequence} "
        'Install the versions resumable supports (`pip install "resumable[apify]"`) or '
        "report this to resumable with your `pip show apify crawlee`.",
        ResumableWarning,
        stacklevel=3,
    )


def actor_is_running() -> bool:
    """Return whether this code runs inside an initialized ``async with Actor:``.

    ``Actor`` is a lazy proxy: reading it before anything initialized it would build an
    instance, so an unresolved proxy is answered without touching it (``__resolved__``);
    a resolved one by the Actor's ``_active`` flag.
    """
    resolved = getattr(Actor, "__resolved__", None)
    if resolved is False:
        return False
    active = getattr(Actor, "_active", None)
    if not isinstance(active, bool):
        _warn_once(
            "the Actor's `_active` flag",
            "jobs inside `async with Actor:` cannot tell that an Actor runs, so they fall back "
            "to FileStore and no platform events. Pass store=ApifyStore() and "
            "triggers=[Signals(), ApifyEvents(), ApifyStatus()] to each job.",
        )
        return False
    return active


class LocalLayout:
    """Where a key-value store on Crawlee's local file-system backend keeps its records.

    Attributes:
        directory: The store's directory (``CRAWLEE_STORAGE_DIR/key_value_stores/NAME``).
        reserved: Keys the backend maps to another file name (the Actor's input record).
    """

    __slots__ = ("directory", "reserved")

    def __init__(self, directory: Path, reserved: frozenset[str]) -> None:
        self.directory = directory
        self.reserved = reserved


def _file_system_client_class(name: str = "FileSystemKeyValueStoreClient") -> type[Any] | None:
    try:
        module = importlib.import_module(_FILE_SYSTEM_CLIENT_MODULE)
    except ImportError:
        return None
    found = getattr(module, name, None)
    return found if isinstance(found, type) else None


_LOST_DIRECT_PATH = (
    "ApifyStore writes through Crawlee's own client there instead, which never fsyncs (a "
    "crash can lose the latest save) and takes no lock (fencing against another run on the "
    "machine is no longer atomic)."
)


def local_layout(kvs: KeyValueStore) -> LocalLayout | None:
    """Return where *kvs* keeps its files if its backend is Crawlee's local file system.

    Returns ``None`` for every other backend (the platform, memory, SQL, Redis).
    """
    client = getattr(kvs, "_client", None)
    if client is None:
        _warn_once(
            "the client of a KeyValueStore (`KeyValueStore._client`)",
            "ApifyStore cannot tell whether a store is on the local file system. "
            + _LOST_DIRECT_PATH,
        )
        return None
    file_system_client = _file_system_client_class()
    if file_system_client is None:
        if "FileSystem" in type(client).__name__:
            _warn_once(
                f"Crawlee's file-system key-value store client (`{_FILE_SYSTEM_CLIENT_MODULE}"
                ".FileSystemKeyValueStoreClient`)",
                _LOST_DIRECT_PATH,
            )
        return None
    if not isinstance(client, file_system_client):
        return None
    directory = getattr(client, "path_to_kvs", None)
    if not isinstance(directory, Path):
        _warn_once(
            "the directory of a file-system key-value store (`path_to_kvs`)", _LOST_DIRECT_PATH
        )
        return None
    reserved = {getattr(client, name, None) for name in _INPUT_KEY_ATTRIBUTES}
    names = frozenset(name for name in reserved if isinstance(name, str))
    if type(client).__name__.startswith("Apify") and not names:
        _warn_once(
            "the input record's key on Apify's file-system client (`_input_key`)",
            "a job keyed like the Actor's input record (INPUT) would not be refused.",
        )
    return LocalLayout(directory, names)


_LOST_MEND = (
    "a kill between Crawlee writing a push's item files and writing their count can let the "
    "next push overwrite items of a local dataset."
)


async def mend_local_count(dataset: Any, start: int) -> None:
    """Move a local file-system dataset's item count up to *start* if a kill left it behind.

    Crawlee's file-system dataset names each item's file after the count in its metadata and
    writes the count after the files, so a kill in between leaves files past the count, and the
    next push would write over them. Every other backend is left alone.
    """
    client = getattr(dataset, "_client", None)
    file_system_client = _file_system_client_class("FileSystemDatasetClient")
    if client is None or file_system_client is None:
        if client is None or "FileSystem" in type(client).__name__:
            _warn_once("Crawlee's file-system dataset client (`Dataset._client`)", _LOST_MEND)
        return
    if not isinstance(client, file_system_client):
        return
    update = getattr(client, "_update_metadata", None)
    if update is None:
        _warn_once("the metadata update of a file-system dataset (`_update_metadata`)", _LOST_MEND)
        return
    metadata = await client.get_metadata()
    if metadata.item_count < start:
        await update(new_item_count=start)


def hook_emit(
    manager: EventManager, before: Callable[[Event, Any], None]
) -> Callable[[], bool] | None:
    """Call *before* with each event *manager* emits and its data, synchronously, before any
    listener.

    The event manager starts each listener in a task of its own, so a job's task that is
    already scheduled would run one more item before a listener could stop it. Crawlee's
    ``EventManager.emit`` is where every event passes (the Apify event manager calls it for
    each websocket message), so the hook replaces ``emit`` on this instance.

    Returns:
        A callable that removes the hook and returns ``True``, or returns ``False`` and
        leaves it in place (as a pass-through that calls *before* only while the caller
        keeps it) when something else has wrapped ``emit`` on top of it since. ``None``
        when the manager cannot be hooked (warned about).
    """
    original = getattr(manager, "emit", None)
    attributes = getattr(manager, "__dict__", None)
    if not callable(original) or attributes is None:
        _warn_once(
            "the event manager's `emit`",
            "a job that gets `migrating` may start one more item before it stops (its "
            "listener still saves the cursor in time).",
        )
        return None

    def emit(*, event: Event, event_data: Any) -> None:
        before(event, event_data)
        original(event=event, event_data=event_data)

    attributes["emit"] = emit

    def unhook() -> bool:
        if attributes.get("emit") is not emit:
            return False
        if getattr(original, "__self__", None) is manager:
            del attributes["emit"]  # the class's own emit again
        else:
            attributes["emit"] = original  # someone else's hook, from before ours
        return True

    return unhook
