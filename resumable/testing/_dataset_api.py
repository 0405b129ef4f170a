"""`DatasetApi`: a stand-in of the Apify platform's dataset API, served on 127.0.0.1.

An Actor on the platform pushes dataset items with one HTTP request per batch and lists them
with one per page, through the Apify API client. Pointed at this stand-in (its `env`), the
unmodified SDK does exactly that over loopback, so that what a delivery costs there can be
measured, and what a lost reply does can be tested, without the platform. It serves the
calls the SDK's dataset client makes: get a dataset, push items, list items.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["DatasetApi"]

_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}


class DatasetApi:
    """The dataset endpoints of the Apify API on 127.0.0.1, for an ``async with``.

    Attributes:
        items: The items each dataset holds, by dataset id.
        pushes: Push requests answered or dropped so far.
        listings: Listing requests answered so far.
        lose_replies: The next this many pushes store their items, then drop the connection
            without answering, as a reply lost on the way back does.
    """

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {}
        self.pushes = 0
        self.listings = 0
        self.lose_replies = 0
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self._made = datetime.now(UTC).isoformat()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"DatasetApi({where})"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            handlers = list(self._connections.values())
            for connection in list(self._connections):  # a client keeps its connections open
                connection.close()
            if handlers:
                await asyncio.wait(handlers)
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """The API's base URL, ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("DatasetApi is not running: use it as `async with`.")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The environment that points an Actor's Apify API client at this stand-in."""
        return {"APIFY_API_BASE_URL": self.url, "APIFY_API_PUBLIC_BASE_URL": self.url}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while request := await _read_request(reader):
                method, target, body = request
                if method == "POST" and self.lose_replies > 0:
                    self.lose_replies -= 1
                    self._answer(method, target, body)
                    return  # stored, and the connection closes without a reply
                status, payload, headers = self._answer(method, target, body)
                writer.write(_response(status, payload, headers))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.pop(writer, None)
            writer.close()

    def _answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        url = urlsplit(target)
        parts = url.path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v2", "datasets"]:
            return 404, b'{"error":{"type":"page-not-found"}}', {}
        items = self.items.setdefault(parts[2], [])
        if len(parts) == 3 and method == "GET":
            return 200, json.dumps({"data": self._metadata(parts[2])}).encode(), {}
        if parts[3:] == ["items"] and method == "POST":
            pushed = json.loads(body)
            items.extend(pushed if isinstance(pushed, list) else [pushed])
            self.pushes += 1
            return 201, b"{}", {}
        if parts[3:] == ["items"] and method == "GET":
            self.listings += 1
            query = parse_qs(url.query)
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["999999999999"])[0])
            page = items[offset : offset + limit]
            headers = {
                "x-apify-pagination-total": str(len(items)),
                "x-apify-pagination-offset": str(offset),
                "x-apify-pagination-count": str(len(page)),
                "x-apify-pagination-limit": str(limit),
                "x-apify-pagination-desc": "false",
            }
            return 200, json.dumps(page).encode(), headers
        return 404, b'{"error":{"type":"page-not-found"}}', {}

    def _metadata(self, dataset: str) -> dict[str, Any]:
        count = len(self.items[dataset])
        return {
            "id": dataset,
            "name": None,
            "userId": "stand-in-user",
            "createdAt": self._made,
            "modifiedAt": self._made,
            "accessedAt": self._made,
            "itemCount": count,
            "cleanItemCount": count,
            "consoleUrl": f"https://console.apify.com/storage/datasets/{dataset}",
        }


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """Read one HTTP/1.1 request; ``None`` once the client closed the connection."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, target, _decoded(body, headers.get("content-encoding", ""))


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        import brotli  # type: ignore[import-untyped]  # noqa: PLC0415 - the API client's own extra

        return bytes(brotli.decompress(body))
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def _response(status: int, payload: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
