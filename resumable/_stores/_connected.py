"""What the stores that hold connections share: a client per event loop, closing, URLs."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from resumable._closing import AsyncClosing

T = TypeVar("T")


class LoopBound(Generic[T]):
    """Makes a client on first use in each event loop and closes the current loop's one.

    asyncio connections belong to the loop that opened them: a store created at import time
    and used by two ``asyncio.run`` calls (or by a loop in another thread) would otherwise
    hand the second loop the first one's sockets.

    Args:
        make: Creates a client; called inside the loop that will use it.
        close: Closes a client; awaited in the loop that made it.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[object]]) -> None:
        self._make = make
        self._close = close
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """Return the running loop's client, making it on first use."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make()
        return client

    async def aclose(self) -> None:
        """Close the running loop's client; the next use makes a new one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await self._close(client)


class ConnectedStore(AsyncClosing):
    """Base of the stores that hold connections: ``async with`` closes them."""

    async def aclose(self) -> None:
        """Close this event loop's connections; the store reconnects if used again."""
        raise NotImplementedError


def redact(url: str) -> str:
    """Return *url* with its password, if any, replaced by ``***`` (other text unchanged)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
