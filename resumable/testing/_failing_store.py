"""`FailingStore`: a store that fails on purpose, to test retries and error paths."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Collection
from typing import Literal, TypeAlias

from resumable._stores import Guard, MemoryStore, Store

__all__ = ["FailingStore", "Operation"]

Operation: TypeAlias = Literal["load", "save", "delete", "keys"]
"""A store operation that `FailingStore` can make fail."""

_SAVES: tuple[Operation, ...] = ("save",)


class FailingStore:
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

    Attributes:
        calls: Calls of the failing operations so far.
        failures: How many of them failed.
    """

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
        if every is not None and every < 1:
            raise ValueError(f"every= must be a positive number of calls, not {every!r}")
        unknown = set(operations) - {"load", "save", "delete", "keys"}
        if unknown:
            raise ValueError(f"operations= has unknown operations {sorted(unknown)!r}")
        self.inner: Store = inner if inner is not None else MemoryStore()
        self.first = first
        self.every = every
        self.after = after
        self.forever = forever
        self.error = error
        self.delay = delay
        self.lands = lands
        self.operations = frozenset(operations)
        self.calls = 0
        self.failures = 0
        self._pending = 0
        self._made = time.monotonic()

    def __repr__(self) -> str:
        return f"FailingStore({self.inner!r})"

    def fail_next(self, n: int = 1) -> None:
        """Fail the next *n* calls of the failing operations, whatever the other options say."""
        self._pending += n

    async def open(self) -> None:
        """Open the inner store, if it needs opening."""
        opener = getattr(self.inner, "open", None)
        if opener is not None:
            await opener()

    async def load(self, key: str) -> bytes | None:
        """Return the inner store's record for *key*, unless this call fails."""
        await self._maybe_fail("load", key)
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Save to the inner store, unless this call fails (after landing, with ``lands``)."""
        if not self._fails("save"):
            await self.inner.save(key, data, guard=guard)
            return
        if self.lands:
            await self.inner.save(key, data, guard=guard)
        await self._raise("save", key)

    async def delete(self, key: str) -> None:
        """Delete from the inner store, unless this call fails."""
        await self._maybe_fail("delete", key)
        await self.inner.delete(key)

    async def keys(self) -> list[str]:
        """Return the inner store's keys, unless this call fails."""
        await self._maybe_fail("keys", None)
        return await self.inner.keys()

    def _fails(self, operation: Operation) -> bool:
        if operation not in self.operations:
            return False
        self.calls += 1
        if self._pending > 0:
            self._pending -= 1
            return True
        return (
            self.forever
            or self.calls <= self.first
            or (self.every is not None and self.calls % self.every == 0)
            or (self.after is not None and time.monotonic() - self._made >= self.after)
        )

    async def _maybe_fail(self, operation: Operation, key: str | None) -> None:
        if self._fails(operation):
            await self._raise(operation, key)

    async def _raise(self, operation: Operation, key: str | None) -> None:
        self.failures += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.error is None:
            about = f" of key {key!r}" if key is not None else ""
            raise ConnectionError(
                f"{self!r}: injected failure of {operation}{about} (call {self.calls})"
            )
        if isinstance(self.error, BaseException):
            raise copy.copy(self.error)
        raise self.error()
