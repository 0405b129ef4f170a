"""What every provider's watcher shares: the `Notice` it reports and the way it asks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from attrs import frozen

from resumable.cloud._http import Response, request

log = logging.getLogger("resumable.cloud")

CONNECT_TIMEOUT = 1.0
"""Seconds to connect to a metadata service. On a cloud it answers in a millisecond; off
one, a link-local address often drops the connection attempt instead of refusing it."""

PROBE_TIMEOUT = 2.0
"""Seconds the first answer may take once connected (detection)."""

READ_TIMEOUT = 5.0
"""Seconds a routine poll may take once connected."""


@frozen
class Notice:
    """A provider's announcement that this machine is about to be taken away.

    Attributes:
        provider: The provider's name, for messages (``"AWS"``, ``"Google Cloud"``, ``"Azure"``).
        action: What will happen, in the provider's words (``"terminate"``, ``"Preempt"``...).
        deadline: When it happens (timezone-aware), as announced or as the provider documents.
        stops: Whether the process goes away (``False`` for AWS ``hibernate``: the process is
            frozen and carries on later).
        event_id: The provider's id of the event, when it can be acknowledged (Azure).
    """

    provider: str
    action: str
    deadline: datetime
    stops: bool = True
    event_id: str | None = None


class Provider(Protocol):
    """One cloud's metadata protocol: is this that cloud, and has it announced an end?"""

    name: str
    url: str
    interval: float
    """Seconds between polls (0 for a long poll, which waits on the server)."""

    async def detect(self) -> None:
        """Check that this provider's metadata service answers here.

        Raises:
            OSError: It does not (refused, timed out, or something else answered).
        """
        ...

    async def poll(self) -> Notice | None:
        """Ask once; return the notice if there is one.

        Raises:
            OSError: The service did not answer as expected (the caller retries).
        """
        ...

    async def acknowledge(self, notice: Notice) -> None:
        """Tell the provider the machine may go now (where the protocol allows it)."""
        ...


async def ask(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float = READ_TIMEOUT,
    body: bytes = b"",
    address: str | None = None,
) -> Response:
    """One request to a metadata service, with the connection timeout every watcher uses."""
    return await request(
        method,
        url,
        headers=headers,
        body=body,
        connect_timeout=CONNECT_TIMEOUT,
        timeout=timeout,
        address=address,
    )
