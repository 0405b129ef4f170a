"""Azure: ``Preempt`` (and ``Terminate``) events of the Scheduled Events service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from resumable.cloud._http import ProtocolError, Response
from resumable.cloud._notice import PROBE_TIMEOUT, READ_TIMEOUT, Notice, ask, log

DEFAULT_URL = "http://169.254.169.254"
EVENTS_PATH = "/metadata/scheduledevents?api-version=2020-07-01"
NAME_PATH = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
HEADERS = {"Metadata": "true"}
ENDING = frozenset({"Preempt", "Terminate"})
"""Event types after which the VM is gone (``Terminate``: scale-in or deletion with a
termination notification configured)."""

FIRST_TIMEOUT = 150.0
"""Azure enables Scheduled Events on the first request, which may take up to two minutes."""


class Azure:
    """Polls the Scheduled Events document every *interval* seconds.

    The document lists the events scheduled for the VMs of this VM's group; an event is
    ours when its ``Resources`` name this VM (read once from the instance metadata).
    ``NotBefore`` (an RFC 1123 date, empty once the event has started) is the deadline. An
    event can be approved early with a ``StartRequests`` POST (`acknowledge`).
    """

    name = "Azure"

    def __init__(self, url: str = DEFAULT_URL, *, interval: float = 1.0) -> None:
        self.url = url
        self.interval = interval
        self._vm = ""
        self._polled = False
        self._seen: set[str] = set()
        self._malformed: set[str] = set()

    async def detect(self) -> None:
        """Check that Azure's instance metadata service answers here; note the VM's name.

        Raises:
            OSError: It does not.
        """
        response = await ask("GET", self.url + NAME_PATH, HEADERS, timeout=PROBE_TIMEOUT)
        if response.status != 200:
            raise ProtocolError(f"the VM's name answered HTTP {response.status}")
        self._vm = response.text.strip()

    async def poll(self) -> Notice | None:
        """Read the events document once; return the first ending event for this VM."""
        timeout = FIRST_TIMEOUT if not self._polled else READ_TIMEOUT
        response = await ask("GET", self.url + EVENTS_PATH, HEADERS, timeout=timeout)
        self._polled = True
        for event in _events(response):
            problem = _malformed(event)
            if problem is not None:
                self._ignore(event, problem)
                continue
            resources = event.get("Resources") or []
            if (
                event["EventType"] in ENDING
                and (not resources or self._vm in resources)
                and event["EventId"] not in self._seen
            ):
                try:
                    deadline = _not_before(event.get("NotBefore") or "")
                except ProtocolError as exc:
                    self._ignore(event, str(exc))
                    continue
                self._seen.add(event["EventId"])
                return Notice(self.name, event["EventType"], deadline, event_id=event["EventId"])
        return None

    def _ignore(self, event: Any, problem: str) -> None:
        """Skip an event that cannot be read, saying so once: the others still count."""
        said = repr(event)
        if said not in self._malformed:
            self._malformed.add(said)
            log.warning(
                "Azure at %s: ignoring a scheduled event that %s: %s", self.url, problem, said[:500]
            )

    async def acknowledge(self, notice: Notice) -> None:
        """Approve the event (``StartRequests``): the VM may go before ``NotBefore``."""
        body = json.dumps({"StartRequests": [{"EventId": notice.event_id}]}).encode()
        headers = HEADERS | {"Content-Type": "application/json"}
        response = await ask("POST", self.url + EVENTS_PATH, headers, body=body)
        if response.status != 200:
            raise ProtocolError(
                f"approving event {notice.event_id} answered HTTP {response.status}"
            )


def _events(response: Response) -> list[Any]:
    if response.status != 200:
        raise ProtocolError(f"{EVENTS_PATH} answered HTTP {response.status}")
    try:
        events = json.loads(response.body)["Events"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"unexpected scheduled events document {response.text!r}") from exc
    if not isinstance(events, list):
        raise ProtocolError(f"unexpected scheduled events document {response.text!r}")
    return events


def _malformed(event: Any) -> str | None:
    """Say what is wrong with an event, or ``None`` if it can be read."""
    if not isinstance(event, dict):
        return "is not an object"
    if not isinstance(event.get("EventId"), str) or not event["EventId"]:
        return "has no string EventId"
    if not isinstance(event.get("EventType"), str):
        return "has no string EventType"
    resources = event.get("Resources")
    if resources is not None and not (
        isinstance(resources, list) and all(isinstance(name, str) for name in resources)
    ):
        return "has Resources that are not a list of names"
    if not isinstance(event.get("NotBefore") or "", str):
        return "has a NotBefore that is not a date"
    return None


def _not_before(text: str) -> datetime:
    """``NotBefore`` as a datetime; now when it is empty (the event has started)."""
    if not text.strip():
        return datetime.now(UTC)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"has an unreadable NotBefore {text!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
