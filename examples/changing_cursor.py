"""Change a job's cursor type without losing the progress saved in the old shape.

    python examples/changing_cursor.py

Version 1 of an export job kept an int offset. Version 2 keeps a page number and a page
size. The first run below is version 1 and stops half-way; the second is version 2, which
upgrades the saved offset and carries on from the same place.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs

from resumable import FileStore, resumable

ROWS = 1000
STOP_AT = 400


async def version_1(store: FileStore) -> None:
    """The job as it was: the cursor is the number of rows exported."""

    @resumable(key="export", store=store, triggers=[])
    async def export(*, cursor: int = 0) -> AsyncIterator[int]:
        for offset in range(cursor, STOP_AT, 100):
            yield offset + 100

    outcome = await export()
    print(f"version 1 stopped at offset {outcome.cursor}")


# [docs: version 2]
@attrs.frozen
class Page:
    """Version 2 of the cursor: which page comes next, and how big pages are."""

    number: int
    size: int


def offset_to_page(raw: Any) -> Any:
    """Upgrade a version 1 cursor (raw JSON: an int offset) to version 2 (raw JSON)."""
    return {"number": raw // 100, "size": 100}


async def version_2(store: FileStore) -> int:
    """The job as it is now; returns the first page it exported."""
    first: list[int] = []

    @resumable(key="export", store=store, version=2, upgrade={1: offset_to_page}, triggers=[])
    async def export(*, cursor: Page = Page(0, 100)) -> AsyncIterator[Page]:
        for number in range(cursor.number, ROWS // cursor.size):
            first.append(number)
            yield Page(number + 1, cursor.size)

    outcome = await export()
    print(f"version 2 resumed at {outcome.resumed_from}, finished at {outcome.cursor}")
    return first[0]


# [docs: end]


async def main() -> None:
    """Run version 1, then version 2 on the same state."""
    with tempfile.TemporaryDirectory() as directory:
        store = FileStore(Path(directory))
        await version_1(store)
        first_page = await version_2(store)
    assert first_page == STOP_AT // 100, first_page
    print(f"no row was exported twice: version 2 began at page {first_page}")


if __name__ == "__main__":
    asyncio.run(main())
