"""A sink in twenty lines: a job's outputs delivered exactly once to a SQLite table.

    python examples/custom_sink.py

A sink is an append-only list of JSON values that resumable can read back. The one subtle
part is ``start`` in ``append``: the position the first item takes. Checking it in the
same transaction as the insert makes a delivery that another run already made a no-op
that says so, instead of a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from resumable import FileStore, Outbox, Sink, StaleWriterError, resumable


# [docs: sink]
class SqliteSink:
    """Keeps each output in a row of a SQLite table, numbered from 0."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS items (n INTEGER PRIMARY KEY, item TEXT)")

    async def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        rows = self.db.execute(
            "SELECT item FROM items WHERE n >= ? ORDER BY n LIMIT ?", (start, limit)
        )
        return [json.loads(item) for (item,) in rows]

    async def append(self, items: Sequence[Any], start: int) -> None:
        with self.db:  # one transaction: the check and the inserts land together
            self.db.execute("BEGIN IMMEDIATE")
            if await self.count() != start:
                raise StaleWriterError(f"the table does not hold {start} items")
            self.db.executemany(
                "INSERT INTO items VALUES (?, ?)",
                [(start + i, json.dumps(item)) for i, item in enumerate(items)],
            )


# [docs: end]


class Flaky(SqliteSink):
    """Fails its first append halfway through, as a crash or a lost connection would."""

    failures = 1

    async def append(self, items: Sequence[Any], start: int) -> None:
        if self.failures:
            self.failures -= 1
            await super().append(items[:1], start)
            raise ConnectionError("lost the database halfway")
        await super().append(items, start)


async def main(directory: Path) -> None:
    sink = Flaky(directory / "items.db")
    assert isinstance(sink, Sink)
    fail_at = [7]

    @resumable(key="orders", store=FileStore(directory), sink=sink, every=3, triggers=[])
    async def export(
        *, cursor: int = 0, out: Outbox[dict[str, int]] = Outbox.GIVEN
    ) -> AsyncIterator[int]:
        for order in range(cursor, 10):
            if order in fail_at:
                raise RuntimeError(f"order {order} failed")
            out.push({"order": order, "total": order * 10})
            yield order + 1

    try:
        await export()
    except RuntimeError as exc:
        print(f"first run: {exc}; {await sink.count()} orders in the table")
    fail_at.clear()
    outcome = await export()
    orders = [item["order"] for item in await sink.read(0, 100)]
    print(f"second run: resumed from {outcome.resumed_from}, delivered {outcome.outputs}")
    print(f"the table holds orders {orders}: each once")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
