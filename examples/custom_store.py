"""A store adapter in twenty lines: job state in a SQLite table.

    python examples/custom_store.py

A store keeps one record (opaque bytes) per key. The one subtle part is ``guard``: resumable
passes it to check, right before a write, that this run still owns the key. Calling it
inside the write's transaction makes check and write one atomic step, even across processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from resumable import Store, resumable


# [docs: store]
class SqliteStore:
    """Keeps each key's record in a row of a SQLite table."""

    def __init__(self, path: str | Path) -> None:
        # Autocommit: the transactions below are explicit.
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, data BLOB)")

    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None``."""
        row = self.db.execute("SELECT data FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    async def save(
        self, key: str, data: bytes, *, guard: Callable[[bytes | None], None] | None = None
    ) -> None:
        """Replace *key*'s record with *data*, if *guard* accepts the current one."""
        self.db.execute("BEGIN IMMEDIATE")  # takes the write lock: nobody writes in between
        try:
            if guard is not None:
                guard(await self.load(key))
            self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, data))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    async def delete(self, key: str) -> None:
        """Forget *key*'s record."""
        self.db.execute("DELETE FROM state WHERE key = ?", (key,))

    async def keys(self) -> list[str]:
        """Return the keys with a record, sorted."""
        return [key for (key,) in self.db.execute("SELECT key FROM state ORDER BY key")]


# [docs: end]


async def main() -> None:
    """Run a job on the SQLite store: it fails half-way, then a second run finishes it."""
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "state.sqlite")
        assert isinstance(store, Store)  # the protocol is checkable at run time

        fail_at: set[int] = {6}

        @resumable(key="squares", store=store, every=1)
        async def squares(*, cursor: int = 0) -> AsyncIterator[int]:
            for n in range(cursor, 10):
                if n in fail_at:
                    fail_at.discard(n)
                    raise ConnectionError(f"lost the connection at {n}")
                print(f"{n}^2 = {n * n}")
                yield n + 1

        try:
            await squares()
        except ConnectionError as exc:
            row = await store.load("squares")
            assert row is not None
            print(f"first run failed: {exc}. The row in SQLite:\n  {row.decode()}")
        outcome = await squares()
        print(f"second run: resumed from {outcome.resumed_from}, {outcome.status}")
        assert (outcome.resumed_from, outcome.cursor) == (6, 10)
        store.db.close()


if __name__ == "__main__":
    asyncio.run(main())
