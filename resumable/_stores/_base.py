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
    resumable retries transient errors and wraps the last one in `StoreError`.
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

    # A store may also offer ``async def update(self, key: str, change: Change) -> None``:
    # read the record, call *change* with it and write what it returns, all in one atomic
    # step. A run takes ownership of a key through it, atomically with loading its state,
    # however busy an older run keeps the key; without it, resumable loads, then saves with
    # a guard that the record did not change in between, and retries.

    async def delete(self, key: str) -> None:
        """Forget the record under *key*; do nothing if there is none."""
        ...

    async def keys(self) -> list[str]:
        """Return the keys that have a record, sorted."""
        ...


def max_key_length(store: object) -> int:
    """The longest key *store* holds (256, the Apify key-value store's limit, unless it says)."""
    limit = getattr(store, "max_key_length", 256)
    return limit if isinstance(limit, int) else 256


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
