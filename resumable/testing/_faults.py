"""`Faults`: when the calls of a test double fail, shared by `FailingStore` and `FailingSink`."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Collection

__all__ = ["Faults"]


class Faults:
    """Which calls of a test double fail, and how: the modes its options pick.

    Which calls fail is decided per call of the failing *operations*, and the modes add up:
    ``first=2`` fails the first two calls, ``every=3`` every third one, ``after=5.0`` every
    call from five seconds after the double was made, ``forever=True`` all of them;
    `fail_next` fails the next few from now. The options are attributes: change them while
    a job runs (``forever = False`` heals the double).

    Attributes:
        calls: Calls of the failing operations so far.
        failures: How many of them failed.
    """

    def __init__(
        self,
        *,
        first: int,
        every: int | None,
        after: float | None,
        forever: bool,
        error: BaseException | Callable[[], BaseException] | None,
        delay: float,
        lands: bool,
        operations: Collection[str],
        known: Collection[str],
    ) -> None:
        if every is not None and every < 1:
            raise ValueError(f"every= must be a positive number of calls, not {every!r}")
        unknown = set(operations) - set(known)
        if unknown:
            raise ValueError(f"operations= has unknown operations {sorted(unknown)!r}")
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

    def fail_next(self, n: int = 1) -> None:
        """Fail the next *n* calls of the failing operations, whatever the other options say."""
        self._pending += n

    def _fails(self, operation: str) -> bool:
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

    async def _maybe_fail(self, operation: str, about: str) -> None:
        if self._fails(operation):
            await self._raise(operation, about)

    async def _raise(self, operation: str, about: str) -> None:
        """Fail a call: wait *delay* seconds, then raise *error* (by default a ConnectionError)."""
        self.failures += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.error is None:
            raise ConnectionError(
                f"{self!r}: injected failure of {operation}{about} (call {self.calls})"
            )
        if isinstance(self.error, BaseException):
            raise copy.copy(self.error)
        raise self.error()
