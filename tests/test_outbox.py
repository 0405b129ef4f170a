"""The outbox: pushes are checked and buffered, outputs are committed with their cursor."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from resumable import (
    Controls,
    CursorTypeError,
    FileStore,
    JsonLinesSink,
    MemoryStore,
    Outbox,
    ResumableError,
    StaleWriterError,
    concurrently,
    job,
    resumable,
)
from resumable._outbox import ITEMS_PER_SAVE
from resumable.testing import assert_resumes


class ListSink:
    """An in-memory sink that records each append."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.appends: list[int] = []

    def __repr__(self) -> str:
        return "ListSink()"

    async def count(self) -> int:
        return len(self.items)

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        return self.items[start : start + limit]

    async def append(self, items: Sequence[Any], start: int) -> None:
        if start != len(self.items):
            raise StaleWriterError(f"holds {len(self.items)}, not {start}")
        self.items.extend(items)
        self.appends.append(len(items))


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@dataclasses.dataclass
class Product:
    name: str
    seen: datetime


async def test_push_checks_items_through_the_converter():
    """Dataclasses and datetimes are stored as JSON; a non-JSON item raises at the push."""
    sink = ListSink()
    seen = datetime(2026, 1, 2, tzinfo=UTC)
    async with job("check", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        j.out.push(Product("a", seen))
        j.out.push({"when": seen})
        with pytest.raises(CursorTypeError, match="cannot store"):
            j.out.push({"x": float("nan")})
        with pytest.raises(CursorTypeError):
            j.out.push(object())
        j.advance(1)

    assert [{"name": "a", "seen": seen.isoformat()}, {"when": seen.isoformat()}] == sink.items


async def test_an_extend_that_raises_keeps_none_of_its_items():
    """One bad item in extend() leaves the outbox as it was."""
    sink = ListSink()
    async with job("extend", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        j.out.extend([1, 2])
        with pytest.raises(CursorTypeError):
            j.out.extend([3, float("inf"), 5])
        j.advance(1)

    assert [1, 2] == sink.items


async def test_a_pushed_item_is_stored_as_it_was_at_the_push():
    """Changing a dict after pushing it changes nothing in the sink."""
    sink = ListSink()
    async with job("copy", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        item = {"n": 1}
        j.out.push(item)
        item["n"] = 2
        j.advance(1)

    assert [{"n": 1}] == sink.items


async def test_items_after_the_last_cursor_are_delivered_when_the_run_completes():
    """A completed run delivers everything pushed, even after its last yield."""
    sink = ListSink()

    @resumable(key="tail", store=MemoryStore(), sink=sink, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        out.push(1)
        yield 1
        out.push(2)

    outcome = await export()

    assert [1, 2] == sink.items
    assert 2 == outcome.outputs


async def test_items_after_the_last_cursor_are_dropped_when_the_run_fails():
    """A failed run delivers what its last cursor covers, and nothing pushed after it."""
    sink, store = ListSink(), MemoryStore()

    @resumable(key="fails", store=store, sink=sink, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        out.push(1)
        yield 1
        out.push(2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await export()

    assert [1] == sink.items


async def test_the_job_form_drops_the_tail_when_its_block_raises():
    """In ``job``, items advanced past are delivered on an error; later ones are not."""
    sink = ListSink()
    with pytest.raises(RuntimeError):
        async with job("jfail", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
            j.out.push("a")
            j.advance(1)
            j.out.push("b")
            raise RuntimeError

    assert ["a"] == sink.items


async def test_a_failing_sink_is_retried_and_each_item_lands_once(tmp_path: Path):
    """Appends that fail (one after writing half its lines) are retried; no line is doubled."""
    path = tmp_path / "out.jsonl"

    class Flaky(JsonLinesSink):
        failures = 2

        async def append(self, items: Sequence[Any], start: int) -> None:
            if self.failures:
                self.failures -= 1
                await super().append(items[:1], start)
                raise OSError("the disk hiccuped")
            await super().append(items, start)

    async with job("flaky", cursor=0, store=MemoryStore(), sink=Flaky(path), triggers=[]) as j:
        j.out.extend(["a", "b", "c"])
        j.advance(1)
        await j.save()
        j.out.push("d")
        j.advance(2)

    assert ["a", "b", "c", "d"] == lines(path)
    assert 4 == (j.outcome.outputs if j.outcome else None)


async def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path):
    """A half-written line is not counted, and the next append replaces it."""
    path = tmp_path / "out.jsonl"
    path.write_text('{"a":1}\n{"a"')
    sink = JsonLinesSink(path)

    count, read = await sink.count(), await sink.read(0, 10)
    await sink.append([{"a": 2}], 1)

    assert (1, [{"a": 1}]) == (count, read)
    assert [{"a": 2}] == await sink.read(1, 1)
    assert [{"a": 1}, {"a": 2}] == lines(path)


async def test_a_jsonl_append_at_the_wrong_position_writes_nothing(tmp_path: Path):
    """Appending where the file does not stand raises StaleWriterError and leaves it alone."""
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(path)
    await sink.append([1, 2], 0)

    with pytest.raises(StaleWriterError, match="holds 2 line"):
        await sink.append([3], 1)

    assert [1, 2] == lines(path)


@pytest.mark.parametrize(
    ("tamper", "what"),
    [
        (lambda items: items.append({"n": 99}), "holds more"),
        (lambda items: items.pop(), "holds fewer"),
        (lambda items: items.clear(), "holds fewer"),
    ],
)
async def test_a_sink_written_by_someone_else_stops_the_run_before_it_writes(
    tmp_path: Path, tamper: Any, what: str
):
    """Fewer, more or other items than the record accounts for: an error naming both."""
    store, sink = FileStore(tmp_path / "state"), ListSink()

    @resumable(key="foreign", store=store, sink=sink, every=1, interval=None, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[dict[str, int]]) -> AsyncIterator[int]:
        for i in range(cursor, 3):
            out.push({"n": i})
            yield i + 1

    await export()
    tamper(sink.items)
    before, record = list(sink.items), (tmp_path / "state" / "foreign.json").read_bytes()

    with pytest.raises(ResumableError, match=f"ListSink\\(\\) of job 'foreign' {what}"):
        await export()

    assert before == sink.items
    assert record == (tmp_path / "state" / "foreign.json").read_bytes()


async def test_a_fenced_out_run_delivers_nothing():
    """Once another run took the key over, the old run's save fails before its delivery."""
    store, sink = MemoryStore(), ListSink()
    with pytest.raises(StaleWriterError):
        async with job("fence", cursor=0, store=store, sink=sink, triggers=[]) as old:
            old.out.push("old-1")
            old.advance(1)
            await old.save()
            async with job("fence", cursor=0, store=store, sink=sink, triggers=[]) as new:
                new.out.push("new-2")
                new.advance(2)
            old.out.push("old-2")
            old.advance(2)
            await old.save()

    assert ["old-1", "new-2"] == sink.items


async def test_a_run_taking_over_while_the_owner_saves_and_delivers_reads_again():
    """The owner saves and delivers between the new run's read of the record and its read of
    the sink: the sink then holds more than that record accounts for, and the new run reads
    the key again instead of calling the sink foreign; each item lands once."""
    store = MemoryStore()

    class Racing(ListSink):
        owner_saves: Callable[[], Any] | None = None

        async def read(self, start: int, limit: int) -> Sequence[Any]:
            if self.owner_saves is not None:
                save, self.owner_saves = self.owner_saves, None
                await save()
            return await super().read(start, limit)

    sink = Racing()
    with pytest.raises(StaleWriterError):
        async with job("race", cursor=0, store=store, sink=sink, triggers=[]) as old:
            old.out.push("old-1")
            old.advance(1)
            await old.save()
            old.out.push("old-2")
            old.advance(2)
            sink.owner_saves = old.save
            async with job("race", cursor=0, store=store, sink=sink, triggers=[]) as new:
                resumed_at = new.cursor
                new.out.push("new-3")
                new.advance(3)
            await old.save()

    assert 2 == resumed_at
    assert ["old-1", "old-2", "new-3"] == sink.items


async def test_records_without_an_outbox_still_load_and_start_it(tmp_path: Path):
    """A record written before outputs existed resumes; the sink's items count as delivered."""
    path = tmp_path / "out.jsonl"
    path.write_text('"earlier"\n')
    store = MemoryStore()
    async with job("old", cursor=0, store=store, triggers=[]) as j:
        j.advance(5)
    assert b"outbox" not in (await store.load("old") or b"")

    async with job("old", cursor=0, store=store, sink=JsonLinesSink(path), triggers=[]) as j:
        j.out.push("new")
        j.advance(6)

    assert ["earlier", "new"] == lines(path)
    assert 5 == (j.outcome.resumed_from if j.outcome else None)


async def test_the_outbox_asks_for_a_save_once_it_holds_its_bound():
    """A long stretch of pushes is saved and delivered in batches, keeping the record small."""
    sink, store = ListSink(), MemoryStore()

    @resumable(key="bound", store=store, sink=sink, interval=None, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 5 * ITEMS_PER_SAVE):
            out.push(i)
            yield i + 1

    outcome = await export()

    assert list(range(5 * ITEMS_PER_SAVE)) == sink.items
    assert len(sink.appends) >= 4
    assert max(sink.appends) <= 2 * ITEMS_PER_SAVE
    assert 5 * ITEMS_PER_SAVE == outcome.outputs


async def test_the_default_sink_is_a_json_lines_file_beside_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without sink=, a job that declares ``out`` writes ``.resumable/<key>.jsonl``."""
    monkeypatch.chdir(tmp_path)

    @resumable(key="dflt", store=MemoryStore(), triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[str]) -> AsyncIterator[int]:
        out.push("x")
        yield 1

    await export()

    assert ["x"] == lines(tmp_path / ".resumable" / "dflt.jsonl")


async def test_a_job_that_never_uses_its_outbox_touches_no_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No ``out`` parameter, no ``j.out``: no sink file and no outbox in the record."""
    monkeypatch.chdir(tmp_path)
    store = MemoryStore()
    async with job("plain", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)

    assert not (tmp_path / ".resumable").exists()
    assert b"outbox" not in (await store.load("plain") or b"")


async def test_concurrently_pushes_results_in_item_order_as_the_watermark_passes():
    """Workers finishing out of order; a failed run and its resume deliver each result once."""
    sink, store = ListSink(), MemoryStore()
    fail_at: list[int] = [37]

    async def worker(i: int) -> int:
        await asyncio.sleep((i * 7919 % 13) / 2000)
        if i in fail_at:
            raise RuntimeError(f"item {i}")
        return i * 10

    @resumable(key="conc", store=store, sink=sink, every=1, interval=None, triggers=[])
    async def crawl(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        async for mark in concurrently(worker, range(100), start=cursor, limit=8, out=out):
            yield mark

    with pytest.raises(RuntimeError, match="item 37"):
        await crawl()
    first = list(sink.items)
    fail_at.clear()
    await crawl()

    assert [i * 10 for i in range(len(first))] == first
    assert [i * 10 for i in range(100)] == sink.items


async def test_assert_resumes_checks_each_output_is_delivered_once():
    """A job that pushes before its yield passes; one that pushes after it loses an item."""

    @resumable(key="good", triggers=[])
    async def good(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 6):
            out.push(i)
            yield i + 1

    @resumable(key="late", triggers=[])
    async def late(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 6):
            yield i + 1
            out.push(i)

    await assert_resumes(good)
    with pytest.raises(AssertionError, match="not delivered exactly once") as failure:
        await assert_resumes(late)

    assert "points=[1]" in str(failure.value)


async def test_the_job_form_starts_its_outbox_when_j_out_is_first_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``j.out`` used after entry: the default sink gets the items, counted from its end."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".resumable").mkdir()
    (tmp_path / ".resumable" / "late.jsonl").write_text('"before"\n')
    store = MemoryStore()
    async with job("late", cursor=0, store=store, triggers=[]) as j:
        j.advance(1)
        await j.save()
        j.out.push("pushed")
        j.advance(2)

    assert ["before", "pushed"] == lines(tmp_path / ".resumable" / "late.jsonl")
    assert 1 == (j.outcome.outputs if j.outcome else None)


async def test_a_watcher_leaving_early_delivers_what_the_saved_cursor_covers():
    """``aclose()`` after three cursors: their items are delivered, the next run adds the rest."""
    sink, store = ListSink(), MemoryStore()

    @resumable(key="watched", store=store, sink=sink, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[int]) -> AsyncIterator[int]:
        for i in range(cursor, 6):
            out.push(i)
            yield i + 1

    run = export()
    async for cursor in run:
        if cursor == 3:
            break
    await run.aclose()
    first = list(sink.items)
    await export()

    assert ([0, 1, 2], "aborted") == (first, run.outcome.status if run.outcome else None)
    assert list(range(6)) == sink.items


async def test_items_pushed_after_the_cut_are_never_delivered():
    """Work cut by an abort past its grace: what it pushes and advances afterwards is dropped."""
    sink = ListSink()
    async with job("cut", cursor=0, store=MemoryStore(), sink=sink, triggers=[], grace=0) as j:
        j.out.push("kept")
        j.advance(1)
        aborting = asyncio.ensure_future(j.abort())
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            j.out.push("after the cut")
            j.advance(2)
            raise
    await aborting

    assert (["kept"], 1, "aborted") == (
        sink.items,
        j.outcome.cursor if j.outcome else None,
        j.outcome.status if j.outcome else None,
    )


class Grab:
    """A trigger that hands the test the run's controls."""

    controls: Controls

    def attach(self, controls: Controls) -> Callable[[], None]:
        self.controls = controls
        return lambda: None


async def test_a_generator_that_yields_after_the_cut_delivers_nothing_of_it():
    """A job that swallows the cut's cancellation, pushes and yields: none of it is kept."""
    sink, grab, started = ListSink(), Grab(), asyncio.Event()

    @resumable(key="stubborn", store=MemoryStore(), sink=sink, triggers=[grab], grace=0)
    async def export(*, cursor: int = 0, out: Outbox[str]) -> AsyncIterator[int]:
        out.push("kept")
        yield 1
        try:
            started.set()
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            out.push("after the cut")
            yield 2

    run = asyncio.ensure_future(export())
    await started.wait()
    await grab.controls.abort("test")
    outcome = await run

    assert (["kept"], 1, "aborted") == (sink.items, outcome.cursor, outcome.status)


async def test_a_slow_sink_holds_the_job_back_instead_of_overfilling_the_record():
    """Pushing far faster than the sink takes: the job waits at its cursors, records stay
    under max_size, and every item is delivered once."""

    class SlowSink(ListSink):
        async def append(self, items: Sequence[Any], start: int) -> None:
            await asyncio.sleep(0.1)
            await super().append(items, start)

    class Sizes(MemoryStore):
        largest = 0

        async def save(self, key: str, data: bytes, *, guard: Any = None) -> None:
            self.largest = max(self.largest, len(data))
            await super().save(key, data, guard=guard)

    sink, store = SlowSink(), Sizes()

    @resumable(key="slow", store=store, sink=sink, triggers=[], interval=None, max_size=64_000)
    async def export(*, cursor: int = 0, out: Outbox[dict[str, int]]) -> AsyncIterator[int]:
        for i in range(cursor, 20_000):
            out.push({"n": i})
            yield i + 1

    await export()

    assert [{"n": i} for i in range(20_000)] == sink.items
    assert store.largest <= 64_000
