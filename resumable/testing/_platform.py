"""`PlatformEvents`: a stand-in for the Apify platform's events websocket, for testing Actors.

On the platform, an Actor's SDK connects to a websocket (``ACTOR_EVENTS_WEBSOCKET_URL``) and
receives JSON messages such as ``{"name": "migrating", "data": {"timeRemainingSecs": 20}}``.
`PlatformEvents` serves that websocket on 127.0.0.1, so a test can run a real Actor (the real
Apify SDK, usually in a child process) and send it ``migrating``, ``aborting`` or
``persistState`` when it wants to.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve

if TYPE_CHECKING:
    from apify.storage_clients import SmartApifyStorageClient

__all__ = ["STAND_IN_MARKER", "PlatformEvents", "local_storage_client", "use_stand_in"]

STAND_IN_MARKER = "RESUMABLE_STAND_IN"
"""Set to ``"1"`` in the environment `PlatformEvents.env` makes; `use_stand_in` requires it."""


class PlatformEvents:
    """The platform's events websocket, served on 127.0.0.1 for the length of an ``async with``.

    To test an Actor, use `ActorProcess`: it runs the Actor, unmodified, in a child process
    against this stand-in. Underneath, it starts the child with the environment from `env`,
    waits until its SDK has connected (`connected`) and sends it events (`send`).

    `env` has two flavours. ``at_home=True`` (the default) makes the SDK believe it runs on the
    platform, as it does in production: it connects to this websocket on its own, and its
    storages must be kept local (see `local_storage_client`). ``at_home=False`` keeps the SDK
    local, and an ``ApifyEventManager`` must be installed for it to connect. `use_stand_in`,
    called in the child before ``async with Actor:``, does what either flavour needs; the
    launcher that `ActorProcess` starts the Actor with calls it, so the Actor need not. Either way
    the Apify API is pointed at a closed loopback port, so any API call the Actor makes fails
    at once and loudly instead of reaching the real platform.
    """

    def __init__(self) -> None:
        self._server: Server | None = None
        self._clients: set[ServerConnection] = set()
        self._connections = 0
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"PlatformEvents({where}, {len(self._clients)} connected)"

    async def __aenter__(self) -> Self:
        self._server = await serve(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """The websocket URL the SDK connects to, ``ws://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("PlatformEvents is not running: use it as `async with`.")
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    @property
    def clients(self) -> int:
        """How many SDKs are connected right now."""
        return len(self._clients)

    @property
    def connections(self) -> int:
        """How many connections were accepted since the server started (a restart adds one)."""
        return self._connections

    async def connected(self, timeout: float = 10.0, *, count: int = 1) -> None:
        """Wait until *count* connections have been accepted since the server started.

        Pass ``count=2`` to wait for an Actor that was killed and started again.

        Raises:
            TimeoutError: Fewer connections arrived within *timeout* seconds.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self._connections >= count)
        except TimeoutError:
            raise TimeoutError(
                f"{self!r}: {self._connections} of {count} connection(s) within {timeout} s. "
                "Is the child's environment from env(), and does it enter `async with Actor:`?"
            ) from None

    async def send(self, name: str, data: dict[str, Any] | None = None) -> int:
        """Send the event ``{"name": name, "data": data}`` to every connected SDK.

        Returns:
            How many SDKs it was sent to.

        Raises:
            RuntimeError: No SDK is connected, so the event would go nowhere.
        """
        if not self._clients:
            raise RuntimeError(f"{self!r}: no Actor is connected to send {name!r} to.")
        message = json.dumps({"name": name, "data": data or {}})
        clients = list(self._clients)
        await asyncio.gather(*(client.send(message) for client in clients))
        return len(clients)

    def env(self, storage_dir: str | os.PathLike[str], *, at_home: bool = True) -> dict[str, str]:
        """Return the environment variables that connect a child's Actor to this stand-in.

        Args:
            storage_dir: The Actor's local storage directory (``CRAWLEE_STORAGE_DIR``); the
                default storages are not purged at start, so a restarted child sees what the
                killed one left, as after a migration on the platform.
            at_home: Make the SDK believe it runs on the platform (see the class docstring).
        """
        api = f"http://127.0.0.1:{_closed_port()}"
        env = {
            "APIFY_ACTOR_EVENTS_WS_URL": self.url,
            "ACTOR_EVENTS_WEBSOCKET_URL": self.url,
            "APIFY_API_BASE_URL": api,
            "APIFY_API_PUBLIC_BASE_URL": api,
            "CRAWLEE_STORAGE_DIR": str(Path(storage_dir)),
            "CRAWLEE_PURGE_ON_START": "false",
            "APIFY_IS_AT_HOME": "1" if at_home else "0",
            STAND_IN_MARKER: "1",
        }
        if at_home:
            env |= {
                "APIFY_TOKEN": "stand-in-token",
                "ACTOR_RUN_ID": "stand-in-run",
                "ACTOR_ID": "stand-in-actor",
                "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "default",
                "ACTOR_DEFAULT_DATASET_ID": "default",
                "ACTOR_DEFAULT_REQUEST_QUEUE_ID": "default",
                "APIFY_ACTOR_PRICING_INFO": json.dumps({"pricingModel": "FREE"}),
                "APIFY_CHARGED_ACTOR_EVENT_COUNTS": json.dumps({"stand-in": 0}),
            }
        return env

    async def _serve(self, connection: ServerConnection) -> None:
        async with self._changed:
            self._clients.add(connection)
            self._connections += 1
            self._changed.notify_all()
        try:
            await connection.wait_closed()
        finally:
            async with self._changed:
                self._clients.discard(connection)
                self._changed.notify_all()


def use_stand_in() -> None:
    """Prepare this process's Actor for the stand-in whose `PlatformEvents.env` it runs with.

    `ActorProcess` calls it in the child before running the Actor, so an Actor under test never
    does; call it yourself only in a launcher of your own, before ``async with Actor:``. At
    home, it keeps the storages on the local disk; not at home, it installs an
    ``ApifyEventManager`` so that the SDK still connects to the events websocket. Outside an
    environment made by `PlatformEvents.env` (which sets ``RESUMABLE_STAND_IN=1``) it does
    nothing, so it can never take a real Actor's storage off the platform.
    """
    from apify import Configuration  # noqa: PLC0415
    from apify.events import ApifyEventManager  # noqa: PLC0415
    from crawlee import service_locator  # noqa: PLC0415

    if os.environ.get(STAND_IN_MARKER) != "1":
        return
    configuration = Configuration()
    service_locator.set_configuration(configuration)
    if configuration.is_at_home:
        service_locator.set_storage_client(local_storage_client())
    else:
        service_locator.set_event_manager(
            ApifyEventManager(
                configuration, persist_state_interval=configuration.persist_state_interval
            )
        )


def local_storage_client() -> SmartApifyStorageClient:
    """Return a storage client that keeps an "at home" Actor's storages on the local disk.

    Install it before ``async with Actor:`` with
    ``crawlee.service_locator.set_storage_client(local_storage_client())``: at home, the SDK
    would otherwise open its storages through the Apify API.
    """
    from apify.storage_clients import FileSystemStorageClient, SmartApifyStorageClient  # noqa: PLC0415

    local = FileSystemStorageClient()
    return SmartApifyStorageClient(cloud_storage_client=local, local_storage_client=local)


def _closed_port() -> int:
    """Return a loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
