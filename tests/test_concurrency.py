"""Watermark and concurrently: bounded, out-of-order work that reports a safe cursor."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import tracemalloc
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar, overload

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable import _concurrency
from resumable._concurrency import Watermark, concurrently

KINDS = ["sequence", "iterable", "async iterable"]

T = TypeVar("T")


def source(kind: str, items: Sequence[int]) -> Iterable[int] | AsyncIterable[int]:
    """*items* as a sequence, a one-shot sync iterator or an async generator."""
    if kind == "sequence":
        return items
    if kind == "iterable":
        return (item for item in items)

    async def produce() -> AsyncIterator[int]:
        for item in items:
            yield item

    return produce()


def result(item: int) -> int:
    """What `Gates.worker` returns for *item*."""
    return 10 * item


class Gates:
    """A worker that blocks on one event per item, recording what started, finished, or not."""

    def __init__(self) -> None:
        self.events: dict[int, asyncio.Event] = {}
        self.failures: dict[int, BaseException] = {}
        self.started: list[int] = []
        self.finished: set[int] = set()
        self.cancelled: set[int] = set()
        self.settled: set[int] = set()
        self.in_flight = 0
        self.most_in_flight = 0

    def release(self, *items: int) -> None:
        for item in items:
            self.events.setdefault(item, asyncio.Event()).set()

    async def worker(self, item: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        # Added after concurrently's own done callback, so it runs after that one too.
        task.add_done_callback(lambda _: self.settled.add(item))
        self.started.append(item)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.events.setdefault(item, asyncio.Event()).wait()
            if item in self.failures:
                raise self.failures[item]
            self.finished.add(item)
        except asyncio.CancelledError:
            self.cancelled.add(item)
            raise
        finally:
            self.in_flight -= 1
        return result(item)


class Feed:
    """An async source that hands out position *i* only once the test offers it.

    Offering position *length* ends the source. It records what it produced, the position
    its pending read waits for, and whether that read was cancelled or the source closed.
    """

    def __init__(self, length: int) -> None:
        self.length = length
        self.offers: dict[int, asyncio.Event] = {}
        self.produced: list[int] = []
        self.waiting_for: int | None = None
        self.cancelled = False
        self.closed = False

    def offer(self, *positions: int) -> None:
        for position in positions:
            self.offers.setdefault(position, asyncio.Event()).set()

    async def items(self) -> AsyncIterator[int]:
        try:
            for position in range(self.length + 1):
                self.waiting_for = position
                await self.offers.setdefault(position, asyncio.Event()).wait()
                self.waiting_for = None
                if position == self.length:
                    return
                self.produced.append(position)
                yield position
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the event loop run until *condition* holds; fail once *timeout* seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {condition}")
        await asyncio.sleep(0)


async def within(awaitable: Awaitable[T], timeout: float = 5.0) -> T:
    """Await *awaitable*; fail once *timeout* seconds pass instead of hanging the test."""
    async with asyncio.timeout(timeout):
        return await awaitable


def no_other_task() -> bool:
    """Whether the calling task is the only one left in the loop."""
    return {asyncio.current_task()} == asyncio.all_tasks()


class WorkerError(Exception):
    """A worker's own failure."""


class Indexed(Sequence[int]):
    """A sequence whose item at position *i* is *i*, which records each index read."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.read: list[int] = []

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...
    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            raise TypeError("sliced: that would copy the whole tail")
        if not 0 <= index < self.length:
            raise IndexError(index)
        self.read.append(index)
        return index

    def __iter__(self) -> Iterator[int]:
        raise AssertionError("iterated: the skipped items should not be touched")


# --- Watermark -----------------------------------------------------------------------------


def test_watermark_starts_at_start() -> None:
    """A fresh watermark sits at its start position, with nothing pending."""
    watermark = Watermark(7)

    assert 7 == watermark.value
    assert 0 == Watermark().value


def test_watermark_advances_over_contiguous_positions() -> None:
    """Marking the watermark's own position moves it, and done() returns the new value."""
    watermark = Watermark()

    returned = [watermark.done(position) for position in range(3)]

    assert [1, 2, 3] == returned
    assert 3 == watermark.value


def test_watermark_waits_for_the_gap_then_frees_what_it_passes() -> None:
    """Positions finished past a gap hold the watermark until the gap fills, then are dropped."""
    watermark = Watermark(10)
    watermark.done(12)
    watermark.done(11)
    held = watermark.value

    watermark.done(10)

    assert 10 == held
    assert 13 == watermark.value
    assert set() == watermark._pending


@pytest.mark.parametrize("position", [0, 4])
def test_watermark_rejects_a_position_before_it(position: int) -> None:
    """Marking a position the watermark has already passed is a ValueError naming both."""
    watermark = Watermark(5)

    with pytest.raises(ValueError, match=rf"position {position} is already finished.* at 5"):
        watermark.done(position)


def test_watermark_rejects_a_position_marked_twice() -> None:
    """Marking a pending position again is a ValueError, and the first mark still counts."""
    watermark = Watermark()
    watermark.done(3)

    with pytest.raises(ValueError, match="position 3 was marked done twice"):
        watermark.done(3)

    assert [1, 2, 4] == [watermark.done(0), watermark.done(1), watermark.done(2)]


@given(
    start=st.integers(min_value=0, max_value=1_000),
    order=st.integers(min_value=0, max_value=40).flatmap(lambda n: st.permutations(list(range(n)))),
)
def test_watermark_is_the_first_unfinished_position(start: int, order: list[int]) -> None:
    """In any completion order, value is the first unfinished position and only later ones wait."""
    watermark = Watermark(start)
    finished: set[int] = set()

    for offset in order:
        returned = watermark.done(start + offset)
        finished.add(start + offset)
        first_unfinished = next(
            p for p in range(start, start + len(order) + 1) if p not in finished
        )

        assert first_unfinished == watermark.value == returned
        assert {p for p in finished if p > first_unfinished} == watermark._pending

    assert start + len(order) == watermark.value


# --- concurrently: arguments and sources -----------------------------------------------------


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_below_one_is_rejected_at_call_time(limit: int) -> None:
    """A limit below 1 is a ValueError as soon as concurrently is called, before iterating."""
    with pytest.raises(ValueError, match=rf"limit must be at least 1.*got {limit}"):
        concurrently(Gates().worker, [1, 2], limit=limit)


def test_negative_start_is_rejected_at_call_time() -> None:
    """A negative start is a ValueError: it would index a sequence from its end."""
    with pytest.raises(ValueError, match=r"start must be a position.*got -1"):
        concurrently(Gates().worker, [1, 2], start=-1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("length", "start"), [(0, 0), (0, 3), (5, 5), (5, 9)])
async def test_no_items_yield_nothing(kind: str, length: int, start: int) -> None:
    """With no items from start on, nothing runs and nothing is yielded."""
    gates = Gates()

    values = [v async for v in concurrently(gates.worker, source(kind, range(length)), start=start)]

    assert [] == values
    assert [] == gates.started


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("start", [0, 1, 7])
@pytest.mark.parametrize("limit", [1, 3, 64])
async def test_runs_each_item_from_start_once_and_ends_at_the_end(
    kind: str, start: int, limit: int
) -> None:
    """Every item from start on runs once, in order of position, and the last value is the end."""
    ran: list[int] = []

    async def worker(item: int) -> None:
        ran.append(item)

    items = source(kind, [10 * position for position in range(20)])
    values = [v async for v in concurrently(worker, items, start=start, limit=limit)]

    assert [10 * position for position in range(start, 20)] == ran
    assert 20 == values[-1]
    assert sorted(set(values)) == values
    assert start < values[0]


async def test_a_sequence_is_indexed_from_start_not_iterated() -> None:
    """A sequence's skipped items are never read: it is indexed from start, never iterated."""
    items = Indexed(10)
    gates = Gates()
    gates.release(7, 8, 9)

    values = [v async for v in concurrently(gates.worker, items, start=7)]

    assert [7, 8, 9] == items.read
    assert 10 == values[-1]


@pytest.mark.parametrize("kind", ["iterable", "async iterable"])
async def test_an_iterable_has_its_first_start_items_skipped(kind: str) -> None:
    """An iterator's first start items are consumed and dropped; positions still count them."""
    ran: list[int] = []

    async def worker(item: int) -> None:
        ran.append(item)

    values = [v async for v in concurrently(worker, source(kind, range(100, 110)), start=4)]

    assert list(range(104, 110)) == ran
    assert 10 == values[-1]


# --- concurrently: the watermark it yields --------------------------------------------------


async def _drive(data: st.DataObject, kind: str, length: int, start: int, limit: int) -> None:
    """Finish started items in an order hypothesis picks, one at a time, and check every value."""
    gates = Gates()
    values: list[int] = []

    async def consume() -> None:
        async for value in concurrently(
            gates.worker, source(kind, range(length)), start=start, limit=limit
        ):
            unfinished = [p for p in range(start, value) if p not in gates.finished]

            assert [] == unfinished, f"yielded {value} past unfinished {unfinished}"
            values.append(value)

    consumer = asyncio.create_task(consume())
    total = max(length - start, 0)
    released: set[int] = set()
    while len(released) < total:
        # A full pipeline means concurrently has taken in every earlier completion.
        await until(
            lambda: (
                consumer.done()
                or len(set(gates.started) - released) == min(limit, total - len(released))
            )
        )
        if consumer.done():
            break
        choice = data.draw(st.sampled_from(sorted(set(gates.started) - released)))
        released.add(choice)
        gates.release(choice)
    await consumer

    assert list(range(start, length)) == gates.started
    assert sorted(set(values)) == values
    assert ([length] if total else []) == values[-1:]
    assert min(limit, total) == gates.most_in_flight


@settings(deadline=None, max_examples=150)
@given(
    data=st.data(),
    kind=st.sampled_from(KINDS),
    length=st.integers(min_value=0, max_value=25),
    start=st.integers(min_value=0, max_value=5),
    limit=st.integers(min_value=1, max_value=6),
)
def test_watermark_never_passes_an_unfinished_item(
    data: st.DataObject, kind: str, length: int, start: int, limit: int
) -> None:
    """In any completion order, values rise strictly, never pass an unfinished item, end at the end.

    The pipeline is also kept full: exactly min(limit, items left) workers are in flight.
    """
    asyncio.run(_drive(data, kind, length, start, limit))


async def test_the_watermark_advances_while_the_source_waits() -> None:
    """Items finished while the async source waits for more are yielded before it produces."""
    gates = Gates()
    gates.release(0, 1, 2, 3)
    feed = Feed(4)
    feed.offer(0, 1, 2)
    values: list[int] = []
    waiting_for: list[int | None] = []

    async def consume() -> None:
        async for value in concurrently(gates.worker, feed.items(), limit=8):
            values.append(value)
            waiting_for.append(feed.waiting_for)
            if value == 3:
                feed.offer(3, 4)

    await within(consume())

    assert 3 in values
    assert 3 == waiting_for[values.index(3)]
    assert 4 == values[-1]
    assert feed.closed


def first_unfinished(gates: Gates, start: int) -> int:
    """The first position from *start* on whose worker has not finished."""
    return next(p for p in itertools.count(start) if p not in gates.finished)


async def _interleave(data: st.DataObject, length: int, start: int, limit: int) -> None:
    """Let the source produce and the workers finish in an order hypothesis picks, one step at
    a time, and check after every step that the consumer holds the first unfinished position.
    """
    gates = Gates()
    feed = Feed(length)
    feed.offer(*range(start))
    values: list[int] = []
    delivered: list[object] = []

    async def consume() -> None:
        async for value in _concurrency._run(
            gates.worker, feed.items(), start, limit, delivered.append
        ):
            expected = first_unfinished(gates, start)

            assert expected == value
            assert [result(p) for p in range(start, value)] == delivered
            values.append(value)

    consumer = asyncio.create_task(consume())

    async def produce(position: int) -> None:
        feed.offer(position)
        if position < length:
            await until(lambda: position in gates.started)
        else:
            await until(lambda: consumer.done() or (feed.closed and feed.waiting_for is None))

    async def finish(item: int) -> None:
        gates.release(item)
        await until(lambda: item in gates.finished)
        # The deterministic point: the consumer has been handed every advance there is.
        reached = first_unfinished(gates, start)
        await until(lambda: consumer.done() or (values[-1:] or [start]) == [reached])

    offered = start
    released: set[int] = set()
    while not consumer.done():
        in_flight = sorted(set(gates.started) - released)
        steps = ["finish"] if in_flight else []
        if offered <= length and len(in_flight) < limit:
            steps.append("produce")
        if not steps:
            break
        if data.draw(st.sampled_from(steps)) == "produce":
            await produce(offered)
            offered += 1
        else:
            choice = data.draw(st.sampled_from(in_flight))
            released.add(choice)
            await finish(choice)
    await within(consumer)

    assert list(range(start, length)) == gates.started
    assert ([length] if length > start else []) == values[-1:]
    assert [result(p) for p in range(start, length)] == delivered
    assert feed.closed
    assert gates.most_in_flight <= limit


@settings(deadline=None, max_examples=150)
@given(
    data=st.data(),
    length=st.integers(min_value=0, max_value=12),
    start=st.integers(min_value=0, max_value=3),
    limit=st.integers(min_value=1, max_value=4),
)
def test_the_watermark_is_always_the_first_unfinished_position(
    data: st.DataObject, length: int, start: int, limit: int
) -> None:
    """With an async source that waits between items, in any order of producing and finishing,
    the consumer is handed the first unfinished position as soon as it moves, and each
    worker's result has been handed on, in item order, before the watermark passes it.
    """
    asyncio.run(_interleave(data, length, start, limit))


async def test_results_are_handed_on_in_item_order_before_the_watermark_passes_them() -> None:
    """Results finished out of order reach the hand-on hook in item order, all those the
    watermark passes before it is yielded; the one still running is not handed on.
    """
    gates = Gates()
    delivered: list[object] = []
    values = _concurrency._run(gates.worker, range(4), 0, 4, delivered.append)
    first = asyncio.ensure_future(anext(values))
    await until(lambda: gates.started == [0, 1, 2, 3])

    gates.release(2, 1, 0)
    value = await within(first)
    at_first_value = list(delivered)
    gates.release(3)
    rest = [v async for v in values]

    assert 3 == value
    assert [result(0), result(1), result(2)] == at_first_value
    assert [4] == rest
    assert [result(p) for p in range(4)] == delivered


async def test_yields_only_when_the_watermark_moves() -> None:
    """A completion past a gap yields nothing; closing the gap yields the new watermark once."""
    gates = Gates()
    values = concurrently(gates.worker, range(5), limit=2)
    first = asyncio.ensure_future(anext(values))
    await until(lambda: gates.started == [0, 1])

    gates.release(1)
    await until(lambda: gates.started == [0, 1, 2])
    early = first.done()
    gates.release(0)
    after_gap = await first
    gates.release(2, 3, 4)
    rest = [v async for v in values]

    assert not early
    assert 2 == after_gap
    assert 5 == rest[-1]


async def test_a_slow_async_source_does_not_hold_back_progress() -> None:
    """Work finished while the async source was fetching is yielded before fetching more."""
    gates = Gates()
    gates.release(0, 1, 2)
    reported = asyncio.Event()

    async def items() -> AsyncIterator[int]:
        yield 0
        await until(lambda: 0 in gates.settled)
        yield 1
        async with asyncio.timeout(5):
            await reported.wait()
        yield 2

    values: list[int] = []
    async for value in concurrently(gates.worker, items(), limit=4):
        values.append(value)
        reported.set()

    assert 1 == values[0]
    assert 3 == values[-1]


# --- concurrently: failures, closing and cancellation ---------------------------------------


async def test_a_worker_exception_propagates_as_itself_and_stops_the_rest() -> None:
    """A worker's exception comes out unwrapped after the others are cancelled; no new work."""
    gates = Gates()
    error = WorkerError("item 3 failed")
    gates.failures[3] = error
    gates.release(0)
    values: list[int] = []

    async def consume() -> None:
        async for value in concurrently(gates.worker, range(100), limit=4):
            values.append(value)
            await until(lambda: len(gates.started) == 5)
            gates.release(3)

    with pytest.raises(WorkerError) as caught:
        await consume()

    assert error is caught.value
    assert [1] == values
    assert [0, 1, 2, 3, 4] == gates.started
    assert {1, 2, 4} == gates.cancelled
    assert 0 == gates.in_flight
    assert no_other_task()


async def test_a_worker_failing_while_the_source_waits_propagates_at_once() -> None:
    """A worker's failure surfaces while the async source waits: it produces nothing more, its
    pending read is cancelled, it is closed, and the other workers are cancelled.
    """
    gates = Gates()
    error = WorkerError("item 1 failed")
    gates.failures[1] = error
    feed = Feed(10)
    feed.offer(0, 1)

    async def consume() -> None:
        async for _ in concurrently(gates.worker, feed.items(), limit=4):
            pass

    consumer = asyncio.create_task(within(consume()))
    await until(lambda: feed.waiting_for == 2 and gates.started == [0, 1])
    gates.release(1)
    with pytest.raises(WorkerError) as caught:
        await consumer

    assert error is caught.value
    assert [0, 1] == feed.produced
    assert feed.cancelled
    assert feed.closed
    assert {0} == gates.cancelled
    assert no_other_task()


async def test_a_worker_exception_beats_later_failures_and_none_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When several workers fail together the first propagates; the others are retrieved quietly."""
    gates = Gates()
    first, second = WorkerError("first"), WorkerError("second")
    gates.failures.update({0: first, 1: second})
    gates.release(0, 1)

    with pytest.raises(WorkerError) as caught:
        async for _ in concurrently(gates.worker, range(10), limit=3):
            pass

    assert first is caught.value
    assert {2} == gates.cancelled
    assert no_other_task()
    # asyncio logs an unretrieved exception when its task is collected: let that happen now,
    # with the tracebacks that would keep the tasks alive dropped.
    del caught
    first.__traceback__ = second.__traceback__ = None
    gc.collect()
    logged = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]

    assert [] == logged


async def test_a_worker_failing_to_start_propagates_and_cancels_the_rest() -> None:
    """A worker that raises when called, before returning an awaitable, stops the run the same."""
    gates = Gates()
    error = WorkerError("no coroutine for 2")
    gates.release(0)

    def worker(item: int) -> Coroutine[Any, Any, int]:
        if item == 2:
            raise error
        return gates.worker(item)

    with pytest.raises(WorkerError) as caught:
        async for _ in concurrently(worker, range(10), limit=2):
            pass

    assert error is caught.value
    assert [0, 1] == gates.started
    assert {1} == gates.cancelled
    assert no_other_task()


async def test_a_failing_async_source_propagates_and_cancels_the_workers() -> None:
    """An exception from the items' async iterator propagates once the workers are cancelled."""
    gates = Gates()
    error = WorkerError("source broke")

    async def items() -> AsyncIterator[int]:
        yield 0
        yield 1
        await until(lambda: gates.started == [0, 1])
        raise error

    with pytest.raises(WorkerError) as caught:
        async for _ in concurrently(gates.worker, items(), limit=4):
            pass

    assert error is caught.value
    assert {0, 1} == gates.cancelled
    assert no_other_task()


async def test_aclose_cancels_the_workers_in_flight_and_waits_for_them() -> None:
    """Closing the iterator cancels the workers in flight and waits for their finally blocks."""
    gates = Gates()
    values = concurrently(gates.worker, range(100), limit=3)
    gates.release(0)
    first = await anext(values)
    await until(lambda: len(gates.started) == 4)

    await values.aclose()

    assert 1 == first
    assert {1, 2, 3} == gates.cancelled
    assert 0 == gates.in_flight
    assert no_other_task()


@pytest.mark.parametrize("how", ["aclose", "cancel the consumer"])
async def test_closing_while_the_source_waits_cancels_the_read_and_closes_it(how: str) -> None:
    """Closing, or cancelling the consumer, while the async source waits for more cancels that
    read, closes the source and cancels the workers in flight.
    """
    gates = Gates()
    gates.release(0)
    feed = Feed(10)
    feed.offer(0, 1)
    values = concurrently(gates.worker, feed.items(), limit=4)
    seen: list[int] = []

    async def consume() -> None:
        async for value in values:
            seen.append(value)  # noqa: PERF401 - the test watches the list grow meanwhile

    if how == "aclose":
        seen.append(await within(anext(values)))
        await until(lambda: feed.waiting_for == 2)
        await values.aclose()
    else:
        consumer = asyncio.create_task(consume())
        await until(lambda: seen == [1] and feed.waiting_for == 2)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer

    assert [1] == seen
    assert [0, 1] == feed.produced
    assert feed.cancelled
    assert feed.closed
    assert {1} == gates.cancelled
    assert no_other_task()


async def test_closing_closes_an_async_generator_source_between_items() -> None:
    """An async generator source that is not being read when the iterator closes is closed."""
    gates = Gates()
    gates.release(0)
    feed = Feed(10)
    feed.offer(*range(10))
    values = concurrently(gates.worker, feed.items(), limit=1)
    first = await within(anext(values))
    await until(lambda: gates.started == [0, 1])

    await values.aclose()

    assert 1 == first
    assert [0, 1] == feed.produced
    assert not feed.cancelled
    assert feed.closed
    assert {1} == gates.cancelled
    assert no_other_task()


async def test_breaking_out_under_aclosing_cancels_the_workers() -> None:
    """A consumer that breaks inside contextlib.aclosing leaves no worker running."""
    gates = Gates()
    gates.release(0)

    async with contextlib.aclosing(concurrently(gates.worker, range(100), limit=3)) as values:
        async for _ in values:
            await until(lambda: len(gates.started) == 4)
            break

    assert {1, 2, 3} == gates.cancelled
    assert no_other_task()


async def test_cancelling_the_consumer_cancels_the_workers_and_propagates() -> None:
    """Cancelling the consuming task cancels the workers, then the task itself ends cancelled."""
    gates = Gates()

    async def consume() -> None:
        async for _ in concurrently(gates.worker, range(100), limit=3):
            pass

    consumer = asyncio.create_task(consume())
    await until(lambda: gates.started == [0, 1, 2])

    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert consumer.cancelled()
    assert {0, 1, 2} == gates.cancelled
    assert no_other_task()


async def test_a_second_cancellation_still_waits_for_the_workers() -> None:
    """Cancelled again while workers clean up, the consumer still waits for them before ending."""
    cleanup_done = asyncio.Event()
    cleaning = asyncio.Event()
    started: list[int] = []

    async def worker(item: int) -> None:
        started.append(item)
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await cleanup_done.wait()

    async def consume() -> None:
        async for _ in concurrently(worker, range(10), limit=2):
            pass

    consumer = asyncio.create_task(consume())
    await until(lambda: started == [0, 1])
    consumer.cancel()
    await cleaning.wait()
    consumer.cancel()
    # One turn of the loop: the consumer's wake-up was queued before ours, so the second
    # cancellation has been delivered by the time we look.
    await asyncio.sleep(0)
    still_running = not consumer.done()
    cleanup_done.set()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert still_running
    assert no_other_task()


# --- concurrently: memory -------------------------------------------------------------------


class _CountingWatermark(Watermark):
    """A watermark that remembers the most positions it ever held pending."""

    __slots__ = ("most_pending",)

    def __init__(self, start: int = 0) -> None:
        super().__init__(start)
        self.most_pending = 0

    def done(self, position: int) -> int:
        value = super().done(position)
        self.most_pending = max(self.most_pending, len(self._pending))
        return value


async def _out_of_order(item: int) -> None:
    """A worker that yields to the loop 0 to 3 times, so neighbours finish out of order."""
    for _ in range(item * 7919 % 4):
        await asyncio.sleep(0)


async def _run_to_end(items: int) -> None:
    last = 0
    async for last in concurrently(_out_of_order, range(items), limit=64):  # noqa: B007
        pass

    assert items == last


@pytest.mark.slow
async def test_pending_positions_stay_bounded_over_a_million_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over a million items at limit 64, the watermark never holds more than a few limits' worth.

    Items finish out of order, so positions do wait in the watermark; how many must depend on
    the limit, never on how many items the job has.
    """
    watermarks: list[_CountingWatermark] = []

    def counting(start: int = 0) -> _CountingWatermark:
        watermarks.append(_CountingWatermark(start))
        return watermarks[-1]

    monkeypatch.setattr(_concurrency, "Watermark", counting)

    await _run_to_end(1_000_000)

    assert 0 < watermarks[-1].most_pending <= 4 * 64


@pytest.mark.slow
async def test_peak_memory_does_not_grow_with_the_number_of_items() -> None:
    """A job ten times longer allocates no more at its peak: nothing is kept per item."""

    async def peak_bytes(items: int) -> int:
        tracemalloc.start()
        try:
            await _run_to_end(items)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short = await peak_bytes(10_000)
    long = await peak_bytes(100_000)

    # Keeping one int per item would already add 2.5 MB; 64 KiB leaves room for noise only.
    assert long < short + 64 * 1024, f"peak {long} B for 100,000 items vs {short} B for 10,000"
