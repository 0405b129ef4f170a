"""`AsyncClosing`: ``async with thing:`` for anything with an ``aclose()``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """Base of what holds resources until ``await aclose()``; ``async with`` calls it."""

    async def aclose(self) -> None:
        """Release what this holds."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
