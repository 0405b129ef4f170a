"""`FailingStore`: a store that fails on purpose, to test retries and error paths."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal, Self, TypeAlias, cast

from resumable._loop_thread import LoopBound
from resumable._stores import (
    Change,
    Guard,
    HasCliLocation,
    HasKeyLimit,
    MemoryStore,
    Store,
    SupportsAclose,
    SupportsOpen,
    SupportsUpdate,
)
from resumable.testing._faults import Faults

__all__ = ["FailingStore", "Operation"]

Operation: TypeAlias = Literal["load", "save", "delete", "keys"]
"""A store operation that `FailingStore` can make fail."""

_SAVES: tuple[Operation, ...] = ("save",)


class FailingStore(Faults):
    """A store that fails on purpose, to test retries and error paths.

    Wraps another store (a fresh `MemoryStore` by default) and makes chosen calls raise
    before they touch it, as a real backend that is down would. Which calls fail is decided
    per call of the failing *operations* (saves only, by default), and the modes add up:
    ``FailingStore(first=2)`` fails the first two saves, ``every=3`` every third one,
    ``after=5.0`` every save from five seconds after it was made, ``forever=True`` all of
    them; `fail_next` fails the next few from now. The options are attributes: change them
    while a job runs (``store.forever = False`` heals it).

    Args:
        inner: The store that holds the records.
        first: Fail the first N calls.
        every: Fail every Nth call (the Nth, the 2Nth, ...).
        after: Fail every call once this many seconds have passed since the store was made.
        forever: Fail every call.
        error: What a failure raises: an exception (a fresh copy each time) or a callable
            returning one. Default: `ConnectionError`. A full disk is
            ``lambda: OSError(errno.ENOSPC, "No space left on device")``.
        delay: Seconds a failing call waits before it raises, as a slow backend would.
        lands: A failing save still reaches the inner store before it raises, as a write
            whose reply was lost.
        operations: Which operations can fail: ``"save"``, ``"delete"``, ``"load"``,
            ``"keys"``.

    It has exactly the capabilities of the store it wraps (`resumable._stores`), as that
    store's own jobs and the command line find them: an atomic ``update`` (whose read
    fails as a ``"load"`` and whose write as a ``"save"``), a key limit, a ``--store``
    location, ``open``/``aclose``, a tie to one event loop. They are those of *inner* when
    the store is made.

    Attributes:
        calls: Calls of the failing operations so far.
        failures: How many of them failed.
    """

    inner: Store

    def __new__(cls, inner: Store | None = None, **options: Any) -> Self:
        kind: type[FailingStore] = cls
        return cast("Self", super().__new__(_with_capabilities(kind, _capabilities(inner))))

    def __init__(
        self,
        inner: Store | None = None,
        *,
        first: int = 0,
        every: int | None = None,
        after: float | None = None,
        forever: bool = False,
        error: BaseException | Callable[[], BaseException] | None = None,
        delay: float = 0.0,
        lands: bool = False,
        operations: Collection[Operation] = _SAVES,
    ) -> None:
        super().__init__(
            first=first,
            every=every,
            after=after,
            forever=forever,
            error=error,
            delay=delay,
            lands=lands,
            operations=operations,
            known=("load", "save", "delete", "keys"),
        )
        self.inner: Store = inner if inner is not None else MemoryStore()

    def __repr__(self) -> str:
        return f"FailingStore({self.inner!r})"

    async def load(self, key: str) -> bytes | None:
        """Return the inner store's record for *key*, unless this call fails."""
        await self._maybe_fail("load", f" of key {key!r}")
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Save to the inner store, unless this call fails (after landing, with ``lands``)."""
        if not self._fails("save"):
            await self.inner.save(key, data, guard=guard)
            return
        if self.lands:
            await self.inner.save(key, data, guard=guard)
        await self._raise("save", f" of key {key!r}")

    async def delete(self, key: str) -> None:
        """Delete from the inner store, unless this call fails."""
        await self._maybe_fail("delete", f" of key {key!r}")
        await self.inner.delete(key)

    async def keys(self) -> list[str]:
        """Return the inner store's keys, unless this call fails."""
        await self._maybe_fail("keys", "")
        return await self.inner.keys()


class _Updating(FailingStore):
    async def update(self, key: str, change: Change) -> None:
        """Update the inner store's record atomically, unless this call fails."""
        inner = cast("SupportsUpdate", self.inner)
        await self._maybe_fail("load", f" of key {key!r}")
        if not self._fails("save"):
            await inner.update(key, change)
            return
        if self.lands:
            await inner.update(key, change)
        await self._raise("save", f" of key {key!r}")


class _Opening(FailingStore):
    async def open(self) -> object:
        """Open the inner store."""
        return await cast("SupportsOpen", self.inner).open()


class _Closing(FailingStore):
    async def aclose(self) -> None:
        """Close the inner store."""
        await cast("SupportsAclose", self.inner).aclose()


class _KeyLimited(FailingStore):
    @property
    def max_key_length(self) -> int:
        """The inner store's key limit."""
        return cast("HasKeyLimit", self.inner).max_key_length


class _Located(FailingStore):
    @property
    def cli_location(self) -> str | None:
        """The inner store's ``--store`` location."""
        return cast("HasCliLocation", self.inner).cli_location


class _LoopBound(FailingStore):
    @property
    def loop_bound(self) -> bool:
        """Whether the inner store works only on the loop it was made on."""
        return cast("LoopBound", self.inner).loop_bound


_CAPABILITIES: tuple[tuple[type, type[FailingStore]], ...] = (
    (SupportsUpdate, _Updating),
    (SupportsOpen, _Opening),
    (SupportsAclose, _Closing),
    (HasKeyLimit, _KeyLimited),
    (HasCliLocation, _Located),
    (LoopBound, _LoopBound),
)


def _capabilities(inner: Store | None) -> tuple[type[FailingStore], ...]:
    return tuple(forward for protocol, forward in _CAPABILITIES if isinstance(inner, protocol))


_Kind = tuple[type[FailingStore], tuple[type[FailingStore], ...]]
_KINDS: dict[_Kind, type[FailingStore]] = {}


def _with_capabilities(
    cls: type[FailingStore], forwards: tuple[type[FailingStore], ...]
) -> type[FailingStore]:
    """*cls* with the methods that forward *forwards*' capabilities to the inner store."""
    missing = tuple(forward for forward in forwards if not issubclass(cls, forward))
    if not missing:
        return cls
    kind = _KINDS.get((cls, missing))
    if kind is None:
        namespace = {"__module__": cls.__module__, "__doc__": cls.__doc__}
        kind = _KINDS[cls, missing] = type(cls.__name__, (*missing, cls), namespace)
    return kind
