"""Google Cloud: the ``instance/preempted`` value of the metadata server, long-polled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from resumable.cloud._http import ProtocolError, Response
from resumable.cloud._notice import PROBE_TIMEOUT, Notice, ask

DEFAULT_URL = "http://metadata.google.internal"
PATH = "/computeMetadata/v1/instance/preempted"
FLAVOR = {"Metadata-Flavor": "Google"}

NOTICE = timedelta(seconds=30)
"""The notice Spot and preemptible VMs get; the value itself carries no time."""

_FIXED_ADDRESS = {"metadata.google.internal": "169.254.169.254"}
"""Google documents this fixed address for its metadata server. Connecting to it directly
spares a DNS lookup, which off Google Cloud may take seconds and runs in a thread that
cannot be cancelled; the Host header still names the server."""


class Gcp:
    """Long-polls ``instance/preempted`` (``wait_for_change=true`` with the last ETag).

    The value reads ``FALSE`` until the VM is preempted; it turns ``TRUE`` when Google Cloud
    sends the VM its shutdown signal, about 30 seconds before it stops the VM. A long poll
    answers the moment the value changes, so the notice is heard at once.

    Args:
        url: The metadata server's base URL.
        wait: Seconds each long poll asks the server to wait (``timeout_sec``).
    """

    name = "Google Cloud"
    interval = 0.0

    def __init__(self, url: str = DEFAULT_URL, *, wait: int = 300) -> None:
        self.url = url
        self.wait = wait
        self._address = _FIXED_ADDRESS.get(urlsplit(url).hostname or "")
        self._etag = ""
        self._preempted = False

    async def detect(self) -> None:
        """Check that a Google metadata server answers here (it signs ``Metadata-Flavor``).

        Raises:
            OSError: It does not.
        """
        response = await self._get(PATH, PROBE_TIMEOUT)
        if response.headers.get("metadata-flavor") != "Google":
            raise ProtocolError(f"HTTP {response.status} without Metadata-Flavor: Google")
        self._read(response)

    async def poll(self) -> Notice | None:
        """Wait (up to `wait` seconds) for the value to change from the one last read."""
        if not self._preempted:
            query = f"?wait_for_change=true&timeout_sec={self.wait}"
            if self._etag:
                query += f"&last_etag={quote(self._etag)}"
            self._read(await self._get(PATH + query, self.wait + 5.0))
        if not self._preempted:
            return None
        return Notice(self.name, "preempted", datetime.now(UTC) + NOTICE)

    async def acknowledge(self, notice: Notice) -> None:
        """Google Cloud takes no acknowledgement."""

    async def _get(self, path: str, timeout: float) -> Response:
        return await ask("GET", self.url + path, FLAVOR, timeout=timeout, address=self._address)

    def _read(self, response: Response) -> None:
        value = response.text.strip().upper()
        if response.status != 200 or value not in {"TRUE", "FALSE"}:
            raise ProtocolError(f"{PATH} answered HTTP {response.status}: {response.text!r}")
        self._preempted = value == "TRUE"
        self._etag = response.headers.get("etag", "")
