"""Testing a resumable job: crash it at every yield, and run it on a store that fails.

Run it with ``pytest examples/testing_example.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from resumable import StoreError, resumable
from resumable.testing import FailingStore, assert_resumes, fast_timing

# Not needed under asyncio_mode = "auto".
pytestmark = pytest.mark.asyncio

SOURCE = [f"row-{i % 37}" for i in range(95)]  # fixed test data, with repeats


class Sink:
    """Where the job writes: a database table in production, a list in the tests."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    async def write(self, rows: Sequence[str]) -> None:
        """Append *rows*."""
        self.rows.extend(rows)


@resumable
async def copy_rows(source: Sequence[str], sink: Sink, *, cursor: int = 0) -> AsyncIterator[int]:
    """Copy *source* to *sink* in batches of 10; the cursor is how many rows are copied."""
    for start in range(cursor, len(source), 10):
        batch = source[start : start + 10]
        await sink.write(batch)
        yield start + len(batch)


@resumable
async def copy_new_rows(
    source: Sequence[str], sink: Sink, *, cursor: int = 0
) -> AsyncIterator[int]:
    """Copy each distinct row once. Buggy: what it has seen is not in the cursor."""
    seen: set[str] = set()
    for start in range(cursor, len(source), 10):
        batch = [row for row in source[start : start + 10] if row not in seen]
        seen.update(batch)
        await sink.write(batch)
        yield min(start + 10, len(source))


async def test_copy_rows_resumes_after_any_crash() -> None:
    """Crashed after any batch and restarted, the copy goes on and writes every row."""
    sink = Sink()

    await assert_resumes(copy_rows, SOURCE, sink, effects=sink.rows)


async def test_copy_new_rows_forgets_what_it_has_seen() -> None:
    """The check finds the bug: after a crash, rows seen before it are copied again."""
    sink = Sink()

    with pytest.raises(AssertionError, match="repeated beyond the re-run window"):
        await assert_resumes(copy_new_rows, SOURCE, sink, effects=sink.rows)


async def test_copy_rows_rides_out_a_flaky_store(
    failing_store: Callable[..., FailingStore],
) -> None:
    """Every other write to the store fails; the job retries and finishes all the same."""
    store = failing_store(every=2)
    flaky_copy = copy_rows.with_options(store=store, every=1)
    sink = Sink()

    outcome = await flaky_copy(SOURCE, sink)
    record = await flaky_copy.state(SOURCE, sink)
    expected = (len(SOURCE), "completed")

    assert expected == (outcome.cursor, outcome.status)
    assert record is not None
    assert expected == (record.cursor, record.status)
    assert list(SOURCE) == sink.rows
    assert store.failures > 0


async def test_copy_rows_gives_up_on_a_store_that_stays_down() -> None:
    """A store that never answers fails the run with StoreError: within a second, not ten,
    under fast_timing()."""
    store = FailingStore(forever=True)
    dead_copy = copy_rows.with_options(store=store)

    with fast_timing(), pytest.raises(StoreError, match="ConnectionError"):
        await dead_copy(SOURCE, Sink())

    assert store.failures > 1  # retried, a millisecond apart
