"""Every use of the Apify SDK's and Crawlee's private internals, and nowhere else.

Each function here reaches into something the SDK does not promise to keep: whether the
``Actor`` proxy is resolved and active, the client behind a `KeyValueStore` or a `Dataset`,
the classes of Crawlee's file-system clients, the input record's file name, a local dataset's
item count, the event manager's ``emit``, for charges the price the SDK gives an event it has
no price for and the name and fields of its local charging log, and the logger and words of
the warning Crawlee's Redis client logs for a key that is not there. (The crawler's internals
are in the sibling `resumable.apify._sdk_crawler`, under the same rule.) Each is pinned by a
test (``tests/test_apify_sdk.py``, ``tests/test_apify_store.py``) that fails when the SDK moves
it, and each falls back loudly, with a `ResumableWarning` once per process that says what is
lost and what to do, instead of silently losing fsync, locking, an early pause or a local
dataset's items.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import importlib
import logging
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from apify import Actor
from apify._charging import ChargeResult
from crawlee.events import Event, EventManager
from crawlee.storages import KeyValueStore

from resumable._distribution import DISTRIBUTION, install_hint
from resumable._errors import ResumableWarning

__all__ = [
    "ChargeResult",
    "LocalLayout",
    "actor_is_running",
    "dataset_location",
    "event_price",
    "hook_emit",
    "local_charged_counts",
    "local_layout",
    "mend_local_count",
    "pushing_once",
    "quiet_absence",
]

_FILE_SYSTEM_CLIENT_MODULE = "crawlee.storage_clients._file_system"
_INPUT_KEY_ATTRIBUTES = ("_input_key", "_input_key_filename")


_UNCOUNTED_CUT = (
    "on a pay-per-event run whose maximum total charge is reached, the SDK stores fewer items "
    "than a push holds, and the engine counts them all as delivered."
)


@functools.cache
def _warn_once(what: str, consequence: str) -> None:
    """Warn that the installed SDK moved *what*, and say what that costs (once per process)."""
    warnings.warn(
        f"resumable could not find {what} in the installed Apify SDK / Crawlee: {consequence} "
        f"Install the versions resumable supports (`{install_hint('apify')}`) or report this "
        f"to resumable with your `pip show {DISTRIBUTION} apify crawlee`.",
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


_BACKENDS = {
    "Memory": "in memory",
    "Sql": "in SQL storage",
    "Redis": "in Redis",
    "Apify": "on the Apify platform",
}


def dataset_location(dataset: Any) -> str | None:
    """Say where a Crawlee dataset keeps its items, as its user knows the place.

    The storage client behind a `Dataset` is private (``Dataset._client``): a local one is
    named by its directory, any other by its backend. Only for a sink's ``repr``, so a
    moved client is not warned about: the repr names the dataset without it.

    Returns:
        ``"at storage/datasets/NAME"``, ``"in memory"``, ..., or ``None`` when unknown.
    """
    client = getattr(dataset, "_client", None)
    if client is None:
        return None
    directory = getattr(client, "path_to_dataset", None)
    if directory is not None:
        return f"at {directory}"
    kind = type(client).__name__
    return _BACKENDS.get(kind.removesuffix("DatasetClient"), f"on {kind}")


_LOST_SINGLE_PUSH = (
    "a push to a dataset on the platform whose reply is lost (a timeout after the API stored "
    "it) is sent again by the Apify API client itself, so those items may be stored twice."
)


def pushing_once(dataset: Any) -> Any:
    """Return a way to push to *dataset* that sends each push once: its outcome is the engine's.

    On the platform the SDK's dataset client (``Dataset._client``) pushes through an Apify API
    client (its ``_api_client``) whose HTTP client (``_http_client``) sends a request again by
    itself when it failed or timed out (``_max_retries``), below the engine: a push whose reply
    was lost is stored twice before the engine hears of it. This returns a `Dataset` over a
    copy of that chain whose HTTP client sends each request once (the same connections, token
    and pay-per-event accounting): a lost reply then reaches the engine, which reads the
    dataset back instead of pushing again. Any other dataset is returned as it is.
    """
    client = getattr(dataset, "_client", None)
    if client is None or type(client).__name__ != "ApifyDatasetClient":
        return dataset
    api: Any = getattr(client, "_api_client", None)
    http: Any = getattr(api, "_http_client", None)
    if not isinstance(getattr(http, "_max_retries", None), int):
        _warn_once("the retries of the platform's dataset API client", _LOST_SINGLE_PUSH)
        return dataset
    http = copy.copy(http)
    http._max_retries = 0  # noqa: SLF001 - see the docstring
    api = copy.copy(api)
    api._http_client = http  # noqa: SLF001
    client = copy.copy(client)
    client._api_client = api  # noqa: SLF001
    return type(dataset)(client, dataset.id, dataset.name)


def within_charge_limit(dataset: Any, count: int) -> int:
    """How many of *count* items one push to *dataset* stores.

    On a pay-per-event run with a maximum total charge, the SDK's dataset client cuts a push
    to the default dataset, silently, to the items the budget still pays for (each one is a
    synthetic ``apify-default-dataset-item`` event: ``_compute_limit_for_push`` of the
    client's ``DatasetClientPpeMixin``). Any other push stores all of them.
    """
    client = getattr(dataset, "_client", None)
    if type(client).__name__ not in ("ApifyDatasetClient", "ApifyFileSystemDatasetClient"):
        return count
    limit = getattr(client, "_compute_limit_for_push", None)
    if limit is None:
        _warn_once("the pay-per-event limit of a push to the default dataset", _UNCOUNTED_CUT)
        return count
    return int(limit(count))


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


_REDIS_KVS_LOGGER = "crawlee.storage_clients._redis._key_value_store_client"
_absent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "resumable_absent", default=None
)


class _AbsentKeyFilter(logging.Filter):
    """Drops the warning Crawlee's Redis client logs for a key that is not there, while
    `quiet_absence` looks that key up (a fresh start looks up a key that is not there yet)."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = _absent.get()
        return (
            key is None or record.getMessage() != f'Metadata for key "{key}" is missing or invalid.'
        )


logging.getLogger(_REDIS_KVS_LOGGER).addFilter(_AbsentKeyFilter())


@contextlib.contextmanager
def quiet_absence(key: str) -> Iterator[None]:
    """Look *key* up without Crawlee's Redis client warning that it is missing.

    The caller tells a missing record from a damaged one itself (``record_exists``), so the
    warning, logged on every fresh start, says nothing it does not.
    """
    token = _absent.set(key)
    try:
        yield
    finally:
        _absent.reset(token)


_CHARGING_MANAGER_CLASS = "ChargingManagerImplementation"
_CHARGING_LOG_ATTRIBUTE = "LOCAL_CHARGING_LOG_DATASET_NAME"


def event_price(manager: Any, event_name: str) -> Decimal:
    """The price the SDK charges *event_name* at: its price, or for an unknown event the SDK's
    own stand-in (nothing on the platform, one dollar locally, so that limits can be tried)."""
    prices = manager.get_pricing_info().per_event_prices
    if event_name in prices:
        return Decimal(prices[event_name])
    return Decimal(0) if Actor.is_at_home() else Decimal(1)


async def local_charged_counts() -> dict[str, int]:
    """The events charged so far in this local run, counted from the SDK's charging log.

    Locally the SDK starts each process with no charged events, but with
    ``ACTOR_TEST_PAY_PER_EVENT`` it logs every charge to a named dataset that survives a
    restart (unless the storages are purged): that log is the run's record of what was charged.
    Its count is mended, as a dataset sink's is, so that no entry is written over.
    """
    module = importlib.import_module("apify._charging")
    manager_class = getattr(module, _CHARGING_MANAGER_CLASS, None)
    name = getattr(manager_class, _CHARGING_LOG_ATTRIBUTE, None)
    if not isinstance(name, str):
        _warn_once(
            "the name of the SDK's local charging log "
            f"(`{_CHARGING_MANAGER_CLASS}.{_CHARGING_LOG_ATTRIBUTE}`)",
            "locally, a restarted run cannot tell which committed charges were made before the "
            "restart, and may charge them again (on the platform the run's own counts are used).",
        )
        return {}
    counts: dict[str, int] = {}
    log = await Actor.open_dataset(name=name)
    entries = 0
    async for item in log.iterate_items():
        entries += 1
        event, count = item.get("event_name"), item.get("charged_count")
        if isinstance(event, str) and isinstance(count, int):
            counts[event] = counts.get(event, 0) + count
    # A kill can leave the log's count behind its files (see `mend_local_count`): the SDK's
    # next entry would overwrite a charge that was made.
    await mend_local_count(log, entries)
    return counts
