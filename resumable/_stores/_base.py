"""The `Store` protocol: what a cursor store adapter implements."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from resumable._errors import InvalidKeyError

Guard = Callable[[bytes | None], None]
"""Called by `Store.save` with the bytes currently stored under the key (``None`` if absent).

It raises to veto the write; the store then writes nothing and lets the exception propagate.
"""

Change = Callable[[bytes | None], bytes]
"""Called by a store's optional ``update`` with the bytes stored under the key (``None`` if
absent); returns the bytes to store instead, or raises to veto the write."""


def guarded(data: bytes, guard: Guard | None) -> Change:
    """The change that writes *data* once *guard* accepts the current record."""

    def change(current: bytes | None) -> bytes:
        if guard is not None:
            guard(current)
        return data

    return change


class CredentialsRefusedError(ConnectionError):
    """The store's server refused the credentials it was given (a wrong user or password).

    A store raises it, with the driver's error chained, for what trying again cannot mend:
    resumable does not retry it, and says that the credentials were refused.
    """


KEY_PATTERN = re.compile(r"[a-zA-Z0-9!\-_.'()]{1,256}")
"""Keys every store accepts: the Apify key-value store's rule, the strictest we support."""


@runtime_checkable
class Store(Protocol):
    """One JSON record per key: load it, save it, delete it, list the keys.

    Records are opaque bytes to a store. Raise whatever the backend raises on failure:
    resumable retries transient errors and wraps the last one in `StoreError`. What a store
    may offer besides has a protocol of its own: `SupportsUpdate`, `SupportsOpen`,
    `SupportsAclose`, `HasKeyLimit`, `HasCliLocation` (and `resumable._loop_thread.LoopBound`).
    """

    async def load(self, key: str) -> bytes | None:
        """Return the record stored under *key*, or ``None`` if there is none."""
        ...

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Store *data* under *key*, replacing any previous record whole.

        A crash must leave either the previous record or the new one, never a mix. When
        *guard* is given, call it with the current record first and write nothing if it
        raises; do the two atomically if the backend allows it, and document the gap if not.
        """
        ...

    async def delete(self, key: str) -> None:
        """Forget the record under *key*; do nothing if there is none."""
        ...

    async def keys(self) -> list[str]:
        """Return the keys that have a record, sorted."""
        ...


# What a store may offer beyond `Store`. Each is checked with ``isinstance`` by whoever uses
# it (the engine, the command line), and forwarded by a store that wraps another
# (`resumable.testing.FailingStore`), so none of them is a name that a wrapper can drop.


@runtime_checkable
class SupportsUpdate(Protocol):
    """A store that reads, changes and writes a record in one atomic step.

    A run takes ownership of a key through it, atomically with loading its state, however
    busy an older run keeps the key. Without it, resumable loads, then saves with a guard
    that the record did not change in between, and tries again when it did.
    """

    async def update(self, key: str, change: Change) -> None:
        """Replace *key*'s record with what *change* makes of it (``None``: none yet).

        Write nothing, and let the exception propagate, when *change* raises.
        """
        ...


@runtime_checkable
class SupportsOpen(Protocol):
    """A store with work to do before its first use: connecting, creating a table.

    The engine awaits `open` when a job starts, before it claims the key and within the
    claim's retries, so that a store that cannot be reached is reported at the start, not
    in the middle of a migration; the command line awaits it when it opens a store. It may
    be awaited more than once (by every job that uses the store), and must then do nothing.
    """

    async def open(self) -> object:
        """Get ready for use (what it returns is ignored)."""
        ...


@runtime_checkable
class SupportsAclose(Protocol):
    """A store that holds resources (connections) until it is closed.

    Whoever made the store closes it: the command line when a command ends, your code for
    the stores it gives its jobs (a store may serve several jobs; a job never closes it).
    """

    async def aclose(self) -> None:
        """Release what the store holds; it may get them back when used again."""
        ...


@runtime_checkable
class HasKeyLimit(Protocol):
    """A store that holds shorter keys than the 256 characters every other store holds."""

    @property
    def max_key_length(self) -> int:
        """The longest key the store holds."""
        ...


@runtime_checkable
class HasCliLocation(Protocol):
    """A store the command line can open: error messages then say how to reset a key."""

    @property
    def cli_location(self) -> str | None:
        """The ``--store`` argument that opens this store, or ``None`` if there is none."""
        ...


DEFAULT_MAX_KEY_LENGTH = 256
"""The longest key a store holds unless it says (`HasKeyLimit`): the Apify key-value store's."""


def max_key_length(store: object) -> int:
    """The longest key *store* holds (256, the Apify key-value store's limit, unless it says)."""
    return store.max_key_length if isinstance(store, HasKeyLimit) else DEFAULT_MAX_KEY_LENGTH


def check_key(key: object, store: object = None) -> str:
    """Return *key* if every store accepts it.

    Raises:
        InvalidKeyError: It is not a string of 1 to 256 characters from ``a-zA-Z0-9!-_.'()``.
    """
    where = f" for {store!r}" if store is not None else ""
    if isinstance(key, str) and KEY_PATTERN.fullmatch(key):
        limit = max_key_length(store)
        if len(key) <= limit:
            return key
        raise InvalidKeyError(
            f"Key {key[:40]!r}... is {len(key)} characters, longer than the {limit} that "
            f"{store!r} can hold. Use a shorter key (a hash of a long name, say)."
        )
    raise InvalidKeyError(
        f"Key {key!r} is not valid{where}: a key is 1 to 256 characters from a-z, A-Z, 0-9 "
        "and !-_.'() (the Apify key-value store's rule). Pass key= with such a string, "
        "or a function of the job's arguments that returns one."
    )
