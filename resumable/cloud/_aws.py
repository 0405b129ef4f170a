"""AWS: the spot ``instance-action`` item of the instance metadata service (IMDSv2)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from resumable.cloud._http import ProtocolError, Response
from resumable.cloud._notice import PROBE_TIMEOUT, READ_TIMEOUT, Notice, ask

DEFAULT_URL = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path, not a secret
ACTION_PATH = "/latest/meta-data/spot/instance-action"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 - a header name, not a secret


class Aws:
    """Polls ``spot/instance-action`` every *interval* seconds with an IMDSv2 session token.

    The item is absent (404) until AWS decides to interrupt the instance, about two
    minutes ahead; then it holds ``{"action": "terminate" | "stop" | "hibernate", "time":
    "...Z"}``. The session token is fetched with a ``PUT`` and renewed before it expires.
    """

    name = "AWS"

    def __init__(self, url: str = DEFAULT_URL, *, interval: float = 5.0, ttl: int = 21600) -> None:
        self.url = url
        self.interval = interval
        self.ttl = ttl
        self._token: str | None = None
        self._renew_at = 0.0

    async def detect(self) -> None:
        """Check that an IMDSv2 service hands out a session token here.

        Raises:
            OSError: It does not.
        """
        await self._renew(timeout=PROBE_TIMEOUT)

    async def poll(self) -> Notice | None:
        """Read ``instance-action`` once; a 401 (token expired early) renews and asks again."""
        response = await self._get(ACTION_PATH)
        if response.status == 401:
            self._token = None
            response = await self._get(ACTION_PATH)
        if response.status == 404:
            return None
        if response.status != 200:
            raise ProtocolError(f"{ACTION_PATH} answered HTTP {response.status}")
        try:
            document = json.loads(response.body)
            action = str(document["action"])
            deadline = datetime.fromisoformat(document["time"])
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=UTC)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(f"unexpected {ACTION_PATH} document {response.text!r}") from exc
        return Notice(self.name, action, deadline, stops=action != "hibernate")

    async def acknowledge(self, notice: Notice) -> None:
        """AWS takes no acknowledgement."""

    async def _get(self, path: str) -> Response:
        if self._token is None or time.monotonic() >= self._renew_at:
            await self._renew()
        assert self._token is not None
        return await ask("GET", self.url + path, {TOKEN_HEADER: self._token})

    async def _renew(self, *, timeout: float = READ_TIMEOUT) -> None:
        asked = time.monotonic()
        response = await ask(
            "PUT", self.url + TOKEN_PATH, {TTL_HEADER: str(self.ttl)}, timeout=timeout
        )
        token = response.text.strip()
        if response.status != 200 or not token:
            raise ProtocolError(f"{TOKEN_PATH} answered HTTP {response.status}")
        self._token = token
        # Renew well before the token expires, so a poll never carries a stale one.
        self._renew_at = asked + self.ttl * 0.8
