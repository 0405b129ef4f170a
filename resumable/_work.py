"""The job's work in flight, as a cancel scope that the engine can cut.

Cutting is cancellation through the standard library's own scope (``asyncio.timeout(None)``
rescheduled to now), so the engine never counts its own ``cancel()`` calls: the scope knows
whether the cancellation that reaches it is the one it caused, and turns only that one into
an ending the engine absorbs. Whatever the work does after the cut (a job that swallows
`CancelledError` and yields again), the snapshot taken at the cut is what gets persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class Work:
    """Where the job's work runs, and whether the engine has cut it.

    Attributes:
        cut: Whether the engine cancelled the work.
        frozen: The snapshot of the latest cursor at the moment of the cut.
    """

    def __init__(self) -> None:
        self.cut = False
        self.frozen: Any = None
        self._scope: asyncio.Timeout | None = None

    async def enter(self) -> None:
        """Make the current task, until `leave`, the work that a cut cancels."""
        scope = asyncio.timeout(None)
        await scope.__aenter__()
        self._scope = scope

    async def leave(self, exc: BaseException | None) -> BaseException | None:
        """End the scope of `enter`; return *exc*, or ``None`` if it was our own cut."""
        scope, self._scope = self._scope, None
        if scope is None:
            return exc
        try:
            await scope.__aexit__(type(exc) if exc is not None else None, exc, None)
        except TimeoutError:
            return None
        return exc

    @contextlib.asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """A scope around one step of the work (a watched run's pull of its next cursor).

        A cut inside it ends the block quietly; the caller checks `cut` after it.
        """
        scope = asyncio.timeout(None)
        self._scope = scope
        try:
            async with scope:
                yield
        except TimeoutError:
            if not scope.expired():
                raise
        finally:
            self._scope = None

    def cut_now(self, frozen: Any) -> None:
        """Cancel the work at its next await, and freeze what may be persisted."""
        self.cut = True
        self.frozen = frozen
        if self._scope is not None:
            self._scope.reschedule(asyncio.get_running_loop().time())
