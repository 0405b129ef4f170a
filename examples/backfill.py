"""Backfill a paginated HTTP API into a database, resuming at the page where it stopped.

    python examples/backfill.py

A fake API runs on 127.0.0.1 (no network needed) and fails once mid-way, as real APIs do.
The first run fails there; the second run continues from the saved page, not from page one.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import attrs

from resumable import FileStore, resumable

STATE = Path(tempfile.gettempdir()) / "resumable-examples" / "backfill"


# [docs: cursor]
@attrs.frozen
class Page:
    """Where the backfill stands: the next offset and the API's token for it."""

    offset: int = 0
    token: str | None = None


# [docs: end]


class Database:
    """Stands in for a real table: an upsert by id, so writing a page twice is harmless."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.writes = 0

    async def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert *rows*, replacing rows with the same id."""
        for row in rows:
            self.rows[row["id"]] = row
            self.writes += 1


async def get_json(url: str) -> Any:
    """GET *url* and decode its JSON body (urllib in a thread: the example needs no client)."""

    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
            return json.load(response)

    return await asyncio.to_thread(fetch)


# [docs: job]
@resumable(key="backfill", store=FileStore(STATE))
async def backfill(api: str, db: Database, *, cursor: Page = Page()) -> AsyncIterator[Page]:
    """Copy every item of the API into *db*, one page at a time."""
    while True:
        query = urllib.parse.urlencode({"offset": cursor.offset, "token": cursor.token or ""})
        body = await get_json(f"{api}/items?{query}")
        await db.upsert(body["items"])
        cursor = Page(body["next_offset"], body["next_token"])
        yield cursor  # the page is in the database: a restart continues after it
        if not body["has_more"]:
            return


# [docs: end]


class FakeApi(BaseHTTPRequestHandler):
    """95 items, 10 a page, each page but the first behind a token; one outage at offset 50."""

    TOTAL = 95
    outage_at: int | None = 50

    def do_GET(self) -> None:
        """Serve ``/items?offset=N&token=T``."""
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        offset = int(query["offset"][0])
        token = query.get("token", [""])[0]
        if offset == FakeApi.outage_at:
            FakeApi.outage_at = None
            self.send_error(503, "down for maintenance")
            return
        if offset and token != _token(offset):
            self.send_error(400, "bad page token")
            return
        end = min(offset + 10, self.TOTAL)
        body = json.dumps(
            {
                "items": [{"id": i, "name": f"item {i}"} for i in range(offset, end)],
                "next_offset": end,
                "next_token": _token(end),
                "has_more": end < self.TOTAL,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Keep the example's output to the story."""


def _token(offset: int) -> str:
    return f"t{offset * 7919 % 10007:05d}"


@contextmanager
def fake_api() -> Iterator[str]:
    """Serve `FakeApi` on a free port of 127.0.0.1; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def main() -> None:
    """Run the backfill, watch it fail at the outage, run it again."""
    db = Database()
    await backfill.reset()  # each run of this example starts over
    with fake_api() as api:
        try:
            await backfill(api, db)
        except HTTPError as exc:
            saved = await backfill.state()
            assert saved is not None
            print(f"Run 1 failed: {exc}. {len(db.rows)} items copied.")
            print(f"The saved state: {saved.cursor}, status {saved.status!r}.")
        outcome = await backfill(api, db)
    print(f"Run 2 resumed from {outcome.resumed_from} and ended at {outcome.cursor}.")
    print(f"{len(db.rows)} of {FakeApi.TOTAL} items in the database, {db.writes} writes.")
    assert len(db.rows) == FakeApi.TOTAL


if __name__ == "__main__":
    asyncio.run(main())
