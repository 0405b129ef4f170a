"""Stand-ins for the clouds' instance metadata services, served on 127.0.0.1.

Each one speaks its provider's own protocol, closely enough that `PreemptionNotice` cannot
tell it from the real service, and lets a test announce a preemption when it wants to::

    async with AwsMetadata() as aws:
        notice = PreemptionNotice(endpoints={"aws": aws.url}, poll_interval=0.05)
        ...  # start a job with triggers=[notice]
        await aws.watched()                 # the trigger is polling
        deadline = aws.preempt(in_seconds=10)

- `AwsMetadata`: IMDSv2. ``PUT /latest/api/token`` with a TTL header hands out a session
  token; every ``GET`` under ``/latest/meta-data/`` without a valid one gets 401.
  ``spot/instance-action`` is 404 until `preempt`.
- `GcpMetadata`: ``/computeMetadata/v1/instance/preempted`` answers only requests with
  ``Metadata-Flavor: Google`` (403 otherwise), carries an ETag, and honours
  ``wait_for_change=true`` (with ``last_etag`` and ``timeout_sec``): the request waits until
  `preempt` flips the value.
- `AzureMetadata`: Scheduled Events (``/metadata/scheduledevents``) and the VM's name
  (``/metadata/instance/compute/name``), only with ``Metadata: true`` and an
  ``api-version`` (400 otherwise); a ``POST`` of ``StartRequests`` approves an event.
- `BlackHole`: an address that drops connection attempts, as 169.254.169.254 often does
  off a cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from resumable.cloud._http import ProtocolError, read_body, read_head

__all__ = ["AwsMetadata", "AzureMetadata", "BlackHole", "GcpMetadata", "MetadataServer"]

Reply = tuple[int, dict[str, str], bytes]


class MetadataServer:
    """An HTTP/1.1 server on 127.0.0.1 for the length of an ``async with``; one request a
    connection. Subclasses answer in `respond` and announce a notice in `preempt`."""

    watch_path = ""
    """The path whose polling means the trigger is watching (see `watched`)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._closing = False
        self._change = asyncio.Event()
        self.watches = 0
        """Valid requests for the notice so far (counted when they arrive)."""
        self.requests: list[tuple[str, str, int]] = []
        """``(method, path, status)`` of every request answered, in order."""

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"{type(self).__name__}({where}, {len(self.requests)} requests)"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is None:
            return
        self._server.close()
        # Let every handler end by itself (a cancelled one is reported as an error by
        # asyncio.start_server): closed connections end their reads, long polls wake up.
        self._closing = True
        self._touch()
        for writer in self._handlers.values():
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5.0)
        await self._server.wait_closed()
        self._server = None

    @property
    def url(self) -> str:
        """The base URL to pass as the provider's endpoint."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started: use `async with`")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def open_connections(self) -> int:
        """Connections being served now (a long poll holds one)."""
        return len(self._handlers)

    def preempt(self, *, in_seconds: float) -> datetime:
        """Announce that the machine goes away in *in_seconds*; return when, as announced."""
        raise NotImplementedError

    def clear(self) -> None:
        """Withdraw the notice (a fresh machine)."""
        raise NotImplementedError

    async def watched(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until the notice has been asked for *count* times with a valid request."""
        await self.wait_for(lambda: count <= self.watches, timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until *predicate* holds, checked after every request and change.

        Raises:
            TimeoutError: It still does not hold after *timeout* seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate() and not self._closing:
                await self._change.wait()

    async def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        """Answer one request: status, headers, body."""
        raise NotImplementedError

    def _touch(self) -> None:
        """Wake everything waiting in `wait_for`."""
        change, self._change = self._change, asyncio.Event()
        change.set()

    def _watching(self) -> None:
        self.watches += 1
        self._touch()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            line, headers = await read_head(reader)
            method, target, _ = line.split(" ", 2)
            body = await read_body(reader, headers, until_eof=False)
            reply = await self._unless_gone(reader, self.respond(method, target, headers, body))
            if reply is None:
                return
            status, extra, payload = reply
            head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
            head += [f"{name}: {value}" for name, value in extra.items()]
            head += [f"Content-Length: {len(payload)}", "Connection: close"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            await writer.drain()
            self.requests.append((method, urlsplit(target).path, status))
            self._touch()
        except (ProtocolError, OSError, ValueError):
            pass  # a client that went away, or not HTTP: nothing to answer
        finally:
            del self._handlers[task]
            writer.close()

    async def _unless_gone(
        self, reader: asyncio.StreamReader, answer: Coroutine[Any, Any, Reply]
    ) -> Reply | None:
        """Run *answer*, but give up (None) if the client hangs up first, as during a long poll."""
        replying = asyncio.ensure_future(answer)
        hangup = asyncio.ensure_future(reader.read())
        try:
            await asyncio.wait({replying, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (replying, hangup):
                task.cancel()
            await asyncio.wait({replying, hangup})
        if replying.cancelled():
            return None
        return replying.result()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
_TEXT = {"Content-Type": "text/plain"}
_JSON = {"Content-Type": "application/json"}


class AwsMetadata(MetadataServer):
    """The EC2 instance metadata service (IMDSv2 only), with a spot ``instance-action``."""

    watch_path = "/latest/meta-data/spot/instance-action"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, float] = {}
        """Session tokens handed out, with the `time.monotonic` moment each expires."""
        self.action: dict[str, str] | None = None

    def preempt(self, *, in_seconds: float, action: str = "terminate") -> datetime:
        """Publish ``{"action": action, "time": now + in_seconds}`` (whole seconds, as AWS)."""
        when = (datetime.now(UTC) + timedelta(seconds=in_seconds)).replace(microsecond=0)
        self.action = {"action": action, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self._touch()
        return when

    def clear(self) -> None:
        self.action = None
        self._touch()

    async def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        path = urlsplit(target).path
        if path == "/latest/api/token":
            return self._token(method, headers)
        if method != "GET":
            return 405, _TEXT, b"Method Not Allowed"
        expires = self.tokens.get(headers.get("x-aws-ec2-metadata-token", ""))
        if expires is None or expires <= time.monotonic():
            return 401, _TEXT, b"Unauthorized"
        if path == self.watch_path:
            self._watching()
            if self.action is not None:
                return 200, _TEXT, json.dumps(self.action).encode()
        if path == "/latest/meta-data/instance-id":
            return 200, _TEXT, b"i-0123456789abcdef0"
        return 404, _TEXT, b"Not Found"

    def _token(self, method: str, headers: dict[str, str]) -> Reply:
        if method != "PUT":
            return 405, _TEXT, b"Method Not Allowed"
        ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return 400, _TEXT, b"Bad Request"
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + int(ttl)
        return 200, {**_TEXT, "X-aws-ec2-metadata-token-ttl-seconds": ttl}, token.encode()


class GcpMetadata(MetadataServer):
    """The Compute Engine metadata server's ``instance/preempted``, with long polls."""

    watch_path = "/computeMetadata/v1/instance/preempted"

    def __init__(self) -> None:
        super().__init__()
        self.preempted = False
        self._version = 0

    @property
    def etag(self) -> str:
        """The ETag of the current value (it changes with every change)."""
        return f"{self._version:016x}"

    def preempt(self, *, in_seconds: float = 30.0) -> datetime:
        """Flip ``preempted`` to TRUE; the value carries no time (Google documents 30 s)."""
        self._set(value=True)
        return datetime.now(UTC) + timedelta(seconds=in_seconds)

    def clear(self) -> None:
        self._set(value=False)

    def _set(self, *, value: bool) -> None:
        self.preempted = value
        self._version += 1
        self._touch()

    async def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        parts = urlsplit(target)
        if headers.get("metadata-flavor") != "Google":
            return 403, _TEXT, b"Missing Metadata-Flavor:Google header."
        if parts.path != self.watch_path:
            return 404, _TEXT, b"Not Found"
        self._watching()
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        if (
            query.get("wait_for_change") == "true"
            and query.get("last_etag", self.etag) == self.etag
        ):
            seen = self.etag
            wait = float(query.get("timeout_sec", "3600"))
            # At the server's own timeout, it answers with the unchanged value.
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: self.etag != seen, timeout=wait)
        flavor = {**_TEXT, "Metadata-Flavor": "Google", "ETag": self.etag}
        return 200, flavor, b"TRUE" if self.preempted else b"FALSE"


class AzureMetadata(MetadataServer):
    """Azure's instance metadata service: Scheduled Events and the VM's name."""

    watch_path = "/metadata/scheduledevents"

    def __init__(self, vm: str = "standin-vm") -> None:
        super().__init__()
        self.vm = vm
        self.incarnation = 1
        self.events: list[dict[str, Any]] = []
        self.approved: list[str] = []
        """Event ids approved through ``StartRequests``, in order."""

    def preempt(self, *, in_seconds: float, resources: list[str] | None = None) -> datetime:
        """Schedule a ``Preempt`` event for this VM (or *resources*) ``NotBefore`` then."""
        when = (datetime.now(UTC) + timedelta(seconds=in_seconds)).replace(microsecond=0)
        self.events.append(
            {
                "EventId": str(uuid.uuid4()).upper(),
                "EventStatus": "Scheduled",
                "EventType": "Preempt",
                "ResourceType": "VirtualMachine",
                "Resources": [self.vm] if resources is None else resources,
                "NotBefore": format_datetime(when, usegmt=True),
                "Description": "Virtual machine is being preempted.",
                "EventSource": "Platform",
                "DurationInSeconds": -1,
            }
        )
        self._changed_document()
        return when

    def clear(self) -> None:
        self.events.clear()
        self._changed_document()

    def _changed_document(self) -> None:
        self.incarnation += 1
        self._touch()

    async def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        parts = urlsplit(target)
        if headers.get("metadata") != "true":
            return _error("Bad request. Required metadata header not specified")
        if "api-version" not in parse_qs(parts.query):
            return _error("Bad request. api-version was not specified in the request")
        if parts.path == "/metadata/instance/compute/name" and method == "GET":
            return 200, _TEXT, self.vm.encode()
        if parts.path != self.watch_path:
            return 404, _JSON, b'{"error": "Not found"}'
        if method == "POST":
            return self._approve(body)
        self._watching()
        document = {"DocumentIncarnation": self.incarnation, "Events": self.events}
        return 200, _JSON, json.dumps(document).encode()

    def _approve(self, body: bytes) -> Reply:
        try:
            ids = [request["EventId"] for request in json.loads(body)["StartRequests"]]
        except (ValueError, KeyError, TypeError):
            return _error("Bad request. The body is not a StartRequests document")
        known = {event["EventId"]: event for event in self.events}
        if not all(event_id in known for event_id in ids):
            return _error("Bad request. Unknown EventId")
        for event_id in ids:
            known[event_id].update(EventStatus="Started", NotBefore="")
            self.approved.append(event_id)
        self._changed_document()
        return 200, _JSON, b""


def _error(message: str) -> Reply:
    return 400, _JSON, json.dumps({"error": message}).encode()


class BlackHole:
    """A 127.0.0.1 port that never completes a connection: attempts hang until they time out.

    The listening socket's backlog is full and nothing accepts, so the kernel drops every
    new connection attempt, as a link-local address with nobody behind it does.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._fillers: list[socket.socket] = []

    def __enter__(self) -> Self:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)  # noqa: FBT003 - the socket API's own spelling
            filler.connect_ex(self._listener.getsockname())
            self._fillers.append(filler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sock in self._fillers:
            sock.close()
        self._listener.close()

    @property
    def url(self) -> str:
        """The base URL to pass as an endpoint."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"
