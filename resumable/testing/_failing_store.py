"""`FailingStore`: a store that fails on purpose, to test retries and error paths."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal, TypeAlias

from resumable._stores import Guard, MemoryStore, Store
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

    async def open(self) -> None:
        """Open the inner store, if it needs opening."""
        opener = getattr(self.inner, "open", None)
        if opener is not None:
            await opener()

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
