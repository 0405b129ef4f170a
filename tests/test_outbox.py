"""The outbox: pushes are checked and buffered, outputs are committed with their cursor."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from uuid import UUID

import attrs
import cattrs.preconf.json
import pytest
from helpers import AppendOnly

from resumable import (
    Controls,
    CursorTypeError,
    FileStore,
    FinishedJobError,
    JsonLinesSink,
    MemoryStore,
    Outbox,
    ResumableError,
    Sink,
    SinkError,
    StaleWriterError,
    StoreError,
    concurrently,
    job,
    resumable,
)
from resumable._codec import make_converter
from resumable._outbox import ITEMS_PER_SAVE, decode_json
from resumable.testing import FailingSink, MemorySink, assert_resumes, fast_timing


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@dataclasses.dataclass
class Product:
    name: str
    seen: datetime


async def test_push_checks_items_through_the_converter():
    """Dataclasses and datetimes are stored as JSON; a non-JSON item raises at the push."""
    sink = MemorySink()
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
    sink = MemorySink()
    async with job("extend", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        j.out.extend([1, 2])
        with pytest.raises(CursorTypeError):
            j.out.extend([3, float("inf"), 5])
        j.advance(1)

    assert [1, 2] == sink.items


async def test_a_pushed_item_is_stored_as_it_was_at_the_push():
    """Changing a dict after pushing it changes nothing in the sink."""
    sink = MemorySink()
    async with job("copy", cursor=0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        item = {"n": 1}
        j.out.push(item)
        item["n"] = 2
        j.advance(1)

    assert [{"n": 1}] == sink.items


async def test_items_after_the_last_cursor_are_delivered_when_the_run_completes():
    """A completed run delivers everything pushed, even after its last yield."""
    sink = MemorySink()

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
    sink, store = MemorySink(), MemoryStore()

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
    sink = MemorySink()
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
    store, sink = FileStore(tmp_path / "state"), MemorySink()

    @resumable(key="foreign", store=store, sink=sink, every=1, interval=None, triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[dict[str, int]]) -> AsyncIterator[int]:
        for i in range(cursor, 3):
            out.push({"n": i})
            yield i + 1

    await export()
    tamper(sink.items)
    before, record = list(sink.items), (tmp_path / "state" / "foreign.json").read_bytes()

    with pytest.raises(ResumableError, match=rf"MemorySink\(<\d+ items>\) of job 'foreign' {what}"):
        await export()

    assert before == sink.items
    assert record == (tmp_path / "state" / "foreign.json").read_bytes()


async def test_a_fenced_out_run_delivers_nothing():
    """Once another run took the key over, the old run's save fails before its delivery."""
    store, sink = MemoryStore(), MemorySink()
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


async def test_an_owner_busy_saving_cannot_hold_off_a_run_taking_over():
    """The owner saves at every read of the sink by the new run, as a busy owner on a busy
    machine may: the new run fenced it out before reading, so each of those saves is
    refused, and the new run resumes from the record it took over; each item lands once."""
    store = MemoryStore()
    refused: list[str] = []

    class Racing(MemorySink):
        owner_saves: Callable[[], Any] | None = None

        async def read(self, start: int, limit: int) -> Sequence[Any]:
            if self.owner_saves is not None:
                try:
                    await self.owner_saves()
                except ResumableError as exc:
                    refused.append(type(exc).__name__)
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
                sink.owner_saves = None
                resumed_at = new.cursor
                new.out.push("new-2")
                new.advance(2)
            await old.save()

    assert 1 == resumed_at
    assert refused
    assert {"StaleWriterError"} == set(refused)
    assert ["old-1", "new-2"] == sink.items


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
    sink, store = MemorySink(), MemoryStore()

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
    sink, store = MemorySink(), MemoryStore()
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
    sink, store = MemorySink(), MemoryStore()

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
    sink = MemorySink()
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
    sink, grab, started = MemorySink(), Grab(), asyncio.Event()

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

    class SlowSink(MemorySink):
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


# -- lost replies and failing sinks ------------------------------------------------------------


def append_only(tmp_path: Path) -> Sink:
    return AppendOnly()


def checking(tmp_path: Path) -> Sink:
    return MemorySink()


def json_lines(tmp_path: Path) -> Sink:
    return JsonLinesSink(tmp_path / "out.jsonl")


SINKS = [
    pytest.param(append_only, id="sink-that-cannot-check-start"),
    pytest.param(checking, id="sink-that-checks-start"),
    pytest.param(json_lines, id="JsonLinesSink"),
]


@pytest.mark.parametrize("make_sink", SINKS)
async def test_an_append_whose_reply_is_lost_is_read_back_not_repeated(
    tmp_path: Path, make_sink: Callable[[Path], Sink]
):
    """An append lands, then raises (a timeout after the destination stored it): before it
    appends again, the engine reads the sink back, finds the batch, and appends nothing."""
    sink = FailingSink(make_sink(tmp_path), lands=True, first=1)
    async with job("lost", 0, store=MemoryStore(), sink=sink, triggers=[], interval=None) as j:
        j.out.extend([{"n": 0}, {"n": 1}, {"n": 2}])
        j.advance(1)
        await j.save()
        j.out.push({"n": 3})
        j.advance(2)

    assert [{"n": n} for n in range(4)] == list(await sink.inner.read(0, 10))
    assert (4, 1) == (j.outcome.outputs if j.outcome else None, sink.failures)


class HalfLands(AppendOnly):
    """Its first append stores the first half of the batch, then the connection drops."""

    async def append(self, items: Sequence[Any], start: int) -> None:
        if not self.appends:
            await super().append(items[: len(items) // 2], start)
            raise ConnectionResetError("the connection dropped halfway through the append")
        await super().append(items, start)


async def test_an_append_that_landed_halfway_is_completed_with_what_is_missing():
    """Half of a batch reached a sink that cannot check positions: the retry reads back and
    appends the other half only."""
    sink = HalfLands()
    async with job("half", 0, store=MemoryStore(), sink=sink, triggers=[], interval=None) as j:
        j.out.extend(list(range(6)))
        j.advance(1)

    assert (list(range(6)), [3, 3]) == (sink.items, sink.appends)


async def test_a_failing_sink_is_reported_as_the_sinks_failure():
    """A sink that stays down fails the run with a SinkError that names the sink and says
    the record holds the outputs, never that the store is unreachable; a later run with the
    sink back delivers them once."""
    with fast_timing(save=0.2):
        store, sink = MemoryStore(), FailingSink(forever=True, error=OSError("the disk is gone"))
        with pytest.raises(SinkError) as caught:
            async with job("down", 0, store=store, sink=sink, triggers=[], interval=None) as j:
                j.out.extend(["a", "b"])
                j.advance(1)
        record = json.loads(await store.load("down") or b"{}")
        sink.forever = False
        async with job("down", 0, store=store, sink=sink, triggers=[], interval=None):
            pass
        message = str(caught.value)

        assert isinstance(caught.value, StoreError)
        assert "to FailingSink(MemorySink(<0 items>))" in message
        assert "'down'" in message
        assert "OSError: the disk is gone" in message
        assert "The sink failed, not the store" in message
        assert "store is reachable" not in message
        assert ("completed", ["a", "b"]) == (record["status"], record["outbox"]["pending"])
        assert ["a", "b"] == await sink.inner.read(0, 10)


# -- pushing after the run ---------------------------------------------------------------------


async def test_a_push_after_the_run_raises_finished_job_error():
    """An outbox kept past its run (a late callback) refuses push() and extend(), naming the
    job, and the sink holds only what was pushed during the run."""
    sink = MemorySink()
    async with job("late-push", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        out = j.out
        out.push("in time")
        j.advance(1)

    with pytest.raises(FinishedJobError, match="job 'late-push', whose run has ended"):
        out.push("late")
    with pytest.raises(FinishedJobError, match="whose run has ended"):
        out.extend(["late", "later"])

    assert ["in time"] == sink.items


async def test_a_generator_outbox_kept_past_the_run_refuses_pushes():
    """The ``out`` a decorated generator leaks (to a task that outlives it) refuses pushes
    once the run has ended."""
    kept: list[Outbox[str]] = []

    @resumable(key="leaky", store=MemoryStore(), sink=MemorySink(), triggers=[])
    async def export(*, cursor: int = 0, out: Outbox[str]) -> AsyncIterator[int]:
        kept.append(out)
        out.push("in time")
        yield 1

    await export()

    with pytest.raises(FinishedJobError, match="'leaky'"):
        kept[0].push("late")


def test_a_plain_generator_outbox_kept_past_the_run_refuses_pushes():
    """The same for a plain generator's outbox."""
    kept: list[Outbox[str]] = []

    @resumable(key="plain-leaky", store=MemoryStore(), sink=MemorySink(), triggers=[])
    def export(*, cursor: int = 0, out: Outbox[str]) -> Iterator[int]:
        kept.append(out)
        yield 1

    export()

    with pytest.raises(FinishedJobError, match="'plain-leaky'"):
        kept[0].push("late")


# -- what an output becomes --------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Point(NamedTuple):
    x: int
    y: int


@attrs.define
class Tagged:
    name: str
    tags: list[str]


@dataclasses.dataclass
class Blob:
    body: bytes


@dataclasses.dataclass
class Labels:
    labels: set[str]


SEEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "delivered"),
    [
        pytest.param({"n": 1, "s": "x", "f": 1.5, "b": True, "z": None}, None, id="json"),
        pytest.param({1: "a", 2.5: "b", None: "c"}, {"1": "a", "2.5": "b", "null": "c"}, id="keys"),
        pytest.param({1: SEEN}, {"1": SEEN.isoformat()}, id="keys-through-the-converter"),
        pytest.param((1, "x"), [1, "x"], id="tuple"),
        pytest.param({"at": (1, 2)}, {"at": [1, 2]}, id="nested-tuple"),
        pytest.param(Point(1, 2), [1, 2], id="named-tuple"),
        pytest.param({"when": SEEN}, {"when": "2026-01-02T03:04:05+00:00"}, id="datetime"),
        pytest.param({"day": date(2026, 1, 2)}, {"day": "2026-01-02"}, id="date"),
        pytest.param({"color": Color.RED}, {"color": "red"}, id="enum"),
        pytest.param(
            {"id": UUID(int=1)}, {"id": "00000000-0000-0000-0000-000000000001"}, id="uuid"
        ),
        pytest.param({"price": Decimal("9.99")}, {"price": "9.99"}, id="decimal"),
        pytest.param({"file": PurePosixPath("/a/b")}, {"file": "/a/b"}, id="path"),
        pytest.param(Counter("aab"), {"a": 2, "b": 1}, id="counter"),
        pytest.param(Tagged("a", ["x"]), {"name": "a", "tags": ["x"]}, id="attrs"),
        pytest.param(Product("a", SEEN), {"name": "a", "seen": SEEN.isoformat()}, id="dataclass"),
    ],
)
async def test_what_an_output_becomes(item: Any, delivered: Any):
    """Each kind of value reaches the sink as the JSON documented in docs/outputs.md."""
    sink = MemorySink()
    async with job("becomes", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        j.out.push(item)
        j.advance(1)

    assert [item if delivered is None else delivered] == sink.items


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        pytest.param({"body": b"abc"}, r"holds bytes \(b'abc'\).*base64", id="bytes"),
        pytest.param(bytearray(b"abc"), r"holds a bytearray .*decode", id="bytearray"),
        pytest.param(Blob(b"abc"), r"holds bytes", id="bytes-in-a-dataclass"),
        pytest.param({"tags": {"a", "b"}}, r"holds a set .*sorted\(value\)", id="set"),
        pytest.param([frozenset({1})], r"holds a frozenset", id="frozenset"),
        pytest.param(Labels({"a"}), r"holds a set", id="set-in-a-dataclass"),
        pytest.param({"at": time(1, 2)}, r"time is not JSON serializable.*converter=", id="time"),
        pytest.param({"ratio": float("nan")}, r"NaN or infinity", id="nan"),
    ],
)
async def test_an_output_json_would_change_is_refused_with_a_reason(item: Any, reason: str):
    """Bytes, sets and what the converter cannot turn into JSON raise CursorTypeError at the
    push, saying what to push instead; nothing of it reaches the sink."""
    sink = MemorySink()
    async with job("refused", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        with pytest.raises(CursorTypeError, match=reason):
            j.out.push(item)
        j.advance(1)

    assert [] == sink.items


async def test_a_converter_of_the_jobs_own_decides_for_itself():
    """converter= of the job's own: its hooks decide, bytes and sets included."""
    converter = cattrs.preconf.json.make_converter()
    converter.register_unstructure_hook(bytes, lambda value: base64.b64encode(value).decode())
    sink = MemorySink()
    options: Any = {"store": MemoryStore(), "sink": sink, "triggers": [], "converter": converter}
    async with job("own", 0, **options) as j:
        j.out.push({"body": b"abc", "tags": {"a"}})
        j.advance(1)

    assert [{"body": "YWJj", "tags": ["a"]}] == sink.items


# -- the quick encoder (orjson) gives what `json` would, or leaves the item to it ------------


class Level(enum.IntEnum):
    HIGH = 2


class Name(str):
    __slots__ = ()


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({"n": 2**70, "m": -(2**64), "top": 2**64 - 1}, id="ints-past-64-bits"),
        pytest.param([0.1, 1e16, 1e-05, 5e-324, 1.7976931348623157e308, -0.0, 3.0], id="floats"),
        pytest.param({"note": "null", "none": None, "list": [None]}, id="null-that-is-not-nan"),
        pytest.param({"s": 'é\n\t"\\ \u2028 \x7f \x00 💡'}, id="escapes"),
        pytest.param(_nested(300), id="deeper-than-orjson-goes"),
        pytest.param({1: None, "a": [True, False]}, id="int-key-beside-null"),
    ],
)
async def test_plain_json_is_delivered_as_pushed(item: Any):
    """What orjson writes otherwise than `json`, or not at all, still reaches the sink as the
    value pushed: ints of any size, floats to the last bit, None, deep nesting."""
    sink = MemorySink()
    async with job("plain", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        j.out.push(item)
        j.out.extend([item])
        j.advance(1)

    expected = json.loads(json.dumps(item))
    assert [expected, expected] == sink.items
    assert [repr(expected)] * 2 == [repr(got) for got in sink.items]  # -0.0 and 3.0 stay


@pytest.mark.parametrize(
    ("item", "delivered"),
    [
        pytest.param({"level": Level.HIGH}, {"level": 2}, id="int-enum"),
        pytest.param({Name("k"): Name("v")}, {"k": "v"}, id="str-subclass"),
        pytest.param([{"id": UUID(int=1)}], [{"id": str(UUID(int=1))}], id="uuid-in-a-list"),
        pytest.param([Color.RED, [SEEN]], ["red", [SEEN.isoformat()]], id="enum-and-datetime"),
    ],
)
async def test_what_orjson_knows_natively_is_delivered_as_the_converter_makes_it(
    item: Any, delivered: Any, tmp_path: Path
):
    """Subclasses, enums, UUIDs and datetimes inside plain containers reach both kinds of sink
    as resumable's converter makes them."""
    sink = MemorySink()
    jsonl = JsonLinesSink(tmp_path / "out.jsonl", fsync=False)
    for into in (sink, jsonl):
        async with job("native", 0, store=MemoryStore(), sink=into, triggers=[]) as j:
            j.out.push(item)
            j.advance(1)

    assert [delivered] == sink.items == lines(tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        pytest.param({"ratio": [float("inf")]}, r"NaN or infinity", id="infinity"),
        pytest.param([None, -float("inf")], r"NaN or infinity", id="infinity-beside-null"),
        pytest.param({"ratio": float("nan")}, r"NaN or infinity", id="nan-at-the-push"),
        pytest.param({"s": "\ud800"}, r"surrogate", id="lone-surrogate"),
        pytest.param({(1, 2): "a"}, r"unhashable", id="tuple-key"),
        pytest.param({"b": [b"x"]}, r"holds bytes", id="bytes-deep"),
        pytest.param([{1, 2}], r"holds a set", id="set-in-a-list"),
    ],
)
def test_the_quick_way_refuses_what_json_refuses(item: Any, reason: str):
    """orjson writes NaN as null and refuses other things than `json`: every refusal still
    happens at the push, push and extend alike, with the reason, and keeps nothing."""
    out: Outbox[Any] = Outbox(make_converter(), lambda: None)
    with pytest.raises(CursorTypeError, match=reason):
        out.push(item)
    with pytest.raises(CursorTypeError, match=reason):
        out.extend([{"fine": 1}, item])
    assert 0 == len(out)


def test_a_converter_of_the_jobs_own_decides_even_inside_plain_containers():
    """orjson writes UUIDs and enums its own way: with converter= the converter's hooks
    decide for them, as they did before orjson."""
    converter = cattrs.preconf.json.make_converter()
    converter.register_unstructure_hook(UUID, lambda value: value.hex)
    converter.register_unstructure_hook(Color, lambda value: value.name)
    out: Outbox[Any] = Outbox(converter, lambda: None)
    out.push({"id": UUID(int=1), "color": Color.RED})

    assert [{"id": UUID(int=1).hex, "color": "RED"}] == decode_json(out.peek(1))


class _Upper(JsonLinesSink):
    """A subclass that changes what an append does, by overriding `append` alone."""

    async def append(self, items: Sequence[Any], start: int) -> None:
        await super().append([{**item, "seen": True} for item in items], start)


class _Texts(MemorySink):
    """A sink that takes the JSON texts themselves."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def append_json(self, texts: Sequence[str], start: int) -> None:
        self.texts.extend(texts)
        await self.append([json.loads(text) for text in texts], start)


async def test_a_sink_with_append_json_gets_the_texts_and_an_override_of_append_wins(
    tmp_path: Path,
):
    """append_json gets the record's JSON texts; a JsonLinesSink subclass that overrides
    only append still sees every append."""
    texts, upper = _Texts(), _Upper(tmp_path / "upper.jsonl", fsync=False)
    for sink in (texts, upper):
        async with job("texts", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
            j.out.push({"n": 1})
            j.advance(1)

    assert ['{"n":1}'] == texts.texts
    assert [{"n": 1}] == texts.items
    assert [{"n": 1, "seen": True}] == lines(tmp_path / "upper.jsonl")
