"""A tiny HTTP/1.1 client for instance metadata services, on `asyncio.open_connection`.

Why not a library: the core depends on attrs, cattrs and tenacity only, and the metadata
services speak the simplest HTTP there is (plain ``http://`` on a link-local address, small
bodies, one request a connection). Why not `urllib.request`: it blocks, so it would need a
thread, and a thread stuck in ``connect()`` to an address that drops packets can be neither
cancelled nor bounded by the job; it also honours ``HTTP_PROXY``, and a metadata request sent
to a proxy answers for the proxy's machine, not this one. Here every step is a coroutine:
bounded by timeouts, cancelled at once when the job ends, and no thread is ever started for
an IP address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from attrs import frozen

MAX_BODY = 1024 * 1024
"""The largest body read; metadata documents are a few hundred bytes."""

_MAX_HEAD = 64 * 1024
_STATUS = re.compile(r"[0-9]{3}")  # ASCII digits: str.isdigit() also takes '²' and '٣'


class ProtocolError(ConnectionError):
    """The peer did not speak HTTP/1.1 as expected."""


@frozen
class Response:
    """An HTTP response: status code, headers (names lower-cased) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """Read a request or status line and its header block; return the line and the headers.

    Raises:
        ProtocolError: The head is truncated or too long.
    """
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("connection closed before the end of the HTTP head") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("HTTP head too long") from exc
    if len(raw) > _MAX_HEAD:
        raise ProtocolError("HTTP head too long")
    first, *lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"malformed HTTP header line {line!r}")
            headers[name.strip().lower()] = value.strip()
    return first, headers


async def read_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str], *, until_eof: bool
) -> bytes:
    """Read a message body framed by *headers* (Content-Length, chunked, or the end).

    Raises:
        ProtocolError: The body is malformed, truncated or larger than `MAX_BODY`.
    """
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return await _read_chunked(reader)
        if "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_BODY:
                raise ProtocolError(f"unexpected Content-Length {length}")
            return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("connection closed in the middle of the body") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("chunk-size line too long") from exc
    except ValueError as exc:
        raise ProtocolError(f"malformed body framing: {exc}") from exc
    if not until_eof:
        return b""
    body = await reader.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ProtocolError("response body too large")
    return body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await _skip_trailers(reader)
            return b"".join(chunks)
        total += size
        if total > MAX_BODY:
            raise ProtocolError("response body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass


async def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    connect_timeout: float,
    timeout: float,
    address: str | None = None,
) -> Response:
    """Send one request on a fresh connection and return the whole response.

    Args:
        method: ``GET``, ``PUT``, ``POST``...
        url: An ``http://`` URL.
        headers: Extra request headers.
        body: The request body (sent with its Content-Length).
        connect_timeout: Seconds to wait for the TCP connection.
        timeout: Seconds to wait, once connected, for the whole response.
        address: Connect here instead of the URL's host (the Host header keeps the URL's).

    Raises:
        OSError: The connection failed or was cut (`TimeoutError` for the timeouts,
            `ProtocolError` for a peer that does not speak HTTP).
        ValueError: *url* is not an ``http://`` URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected an http:// URL, got {url!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None:
        host += f":{port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in {"POST", "PUT"}:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(address or parts.hostname, port)
    try:
        async with asyncio.timeout(timeout):
            writer.write(head + body)
            await writer.drain()
            status_line, response_headers = await read_head(reader)
            version, _, rest = status_line.partition(" ")
            code = rest.partition(" ")[0]
            if not version.startswith("HTTP/1.") or not _STATUS.fullmatch(code):
                raise ProtocolError(f"not an HTTP/1.1 status line: {status_line!r}")
            data = await read_body(reader, response_headers, until_eof=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return Response(int(code), response_headers, data)
