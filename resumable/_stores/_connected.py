"""What the stores that hold connections share: a client per event loop, closing, URLs."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from resumable._closing import AsyncClosing
from resumable._stores._base import CredentialsRefusedError

T = TypeVar("T")


class PerLoop(Generic[T]):
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


S = TypeVar("S", bound=ConnectedStore)
P = ParamSpec("P")
R = TypeVar("R")
Method = Callable[Concatenate[S, P], Coroutine[Any, Any, R]]


def refusing(
    is_refusal: Callable[[Exception], bool],
) -> Callable[[Method[S, P, R]], Method[S, P, R]]:
    """Make a store's method raise `CredentialsRefusedError` when its driver's error says that
    the server refused the credentials (*is_refusal*), so that it is not retried in vain."""

    def decorate(method: Method[S, P, R]) -> Method[S, P, R]:
        @functools.wraps(method)
        async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(self, *args, **kwargs)
            except Exception as exc:
                if isinstance(exc, CredentialsRefusedError) or not is_refusal(exc):
                    raise
                raise CredentialsRefusedError(f"{type(exc).__name__}: {exc}") from exc

        return call

    return decorate
