"""Run a worker over many items at once and report how far the finished prefix reaches.

A job that yields cursors can only promise "everything before me is done". When items finish out
of order, that point is the *watermark*: the first position not finished yet. `Watermark` tracks
it; `concurrently` runs the workers and yields it each time it moves.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, Generic, TypeVar

from resumable._errors import InvalidOptionError
from resumable._outbox import Outbox

__all__ = ["Watermark", "concurrently"]

T = TypeVar("T")


class Watermark:
    """Track positions finished out of order; `value` is the first one not finished yet.

    A position finished ahead of the watermark is kept until the watermark passes it, so memory
    grows with the positions waiting on an earlier unfinished one, never with the total marked.

    Args:
        start: The first position; everything before it counts as finished already.
    """

    __slots__ = ("_pending", "_value")

    def __init__(self, start: int = 0) -> None:
        self._value = start
        self._pending: set[int] = set()

    def __repr__(self) -> str:
        return f"Watermark(value={self._value}, pending={len(self._pending)})"

    @property
    def value(self) -> int:
        """The first position not finished yet; every position before it is finished."""
        return self._value

    def done(self, position: int) -> int:
        """Mark *position* finished.

        Args:
            position: A position at or past `value` that has not been marked before.

        Returns:
            The watermark after this mark.

        Raises:
            ValueError: *position* lies before the watermark or was marked already.
        """
        value = self._value
        if position == value:
            pending = self._pending
            value += 1
            while pending and value in pending:
                pending.remove(value)
                value += 1
            self._value = value
            return value
        if position < value:
            raise InvalidOptionError(
                f"position {position} is already finished: the watermark is at {value}, so "
                "everything before it is done; mark each position once"
            )
        if position in self._pending:
            raise InvalidOptionError(
                f"position {position} was marked done twice (the watermark is at {value}); "
                "mark each position once"
            )
        self._pending.add(position)
        return value


def concurrently(
    worker: Callable[[T], Awaitable[object]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    start: int = 0,
    limit: int = 16,
    out: Outbox[Any] | None = None,
) -> AsyncGenerator[int, None]:
    """Await ``worker(item)`` for the items from position *start* on, *limit* at a time.

    Yields the watermark (the first position not finished yet) each time it advances, never a
    position past an unfinished item: it is a cursor that resumes without losing work. Values
    strictly increase; completions noticed together yield once, with the latest value. After
    the last item finishes the last value is *start* plus the number of items run. No items,
    no values.

    A sequence is indexed from *start*, so the skipped items are never touched; any other
    iterable, sync or async, has its first *start* items consumed and dropped. An async
    iterable is read one item at a time, in a task of its own, while the workers run: a source
    that waits for more (a queue the workers feed, a slow listing) holds back neither the
    watermark nor a worker's failure.

    A worker's exception, or one from iterating *items*, propagates as itself once the workers
    in flight have been cancelled and have finished; no new work starts after it. Closing the
    iterator (``aclose``) or cancelling its consumer does the same cleanup. Either way a
    pending read of an async source is cancelled, and an async generator source is closed.
    Close the iterator explicitly, for instance with `contextlib.aclosing`, when you stop
    iterating early: a loop that just breaks leaves the workers running until the iterator
    is garbage collected.

    An item that takes long holds the watermark back while later ones keep starting: each item
    finished after it stays pending in the watermark, one entry apiece, until it finishes.

    Args:
        worker: Called once per item; its awaitable's result is its output when *out* is
            given, and ignored otherwise.
        items: A sequence, or a sync or async iterable.
        start: The position to begin at, typically the cursor a job resumes from.
        limit: How many workers may be in flight at once.
        out: The job's outbox: each worker's result is pushed into it, in item order, as
            the watermark passes the item, so that the outputs are those of the cursor.

    Returns:
        An async generator of watermark values.

    Raises:
        ValueError: *limit* is below 1 or *start* is negative.
    """
    if limit < 1:
        raise InvalidOptionError(f"limit must be at least 1 worker in flight, got {limit}")
    if start < 0:
        raise InvalidOptionError(f"start must be a position (0 or more), got {start}")
    return _run(worker, items, start, limit, None if out is None else out.push)


async def _run(
    worker: Callable[[T], Awaitable[object]],
    items: Iterable[T] | AsyncIterable[T],
    start: int,
    limit: int,
    deliver: Callable[[object], object] | None = None,
) -> AsyncGenerator[int, None]:
    """Drive the workers for `concurrently`, whose arguments have been checked.

    Args:
        deliver: Called with each worker's result in item order, as the watermark passes
            its position and before that watermark is yielded; a result is kept only while
            it waits on an earlier unfinished item.
    """
    workers = _Workers(worker, start, limit, deliver)
    reported = start
    async_items: AsyncIterator[T] | None = None
    sync_items: Iterator[T] = iter(())
    if isinstance(items, AsyncIterable):
        async_items = aiter(items)
    else:
        sync_items = (
            map(items.__getitem__, range(start, len(items)))
            if isinstance(items, Sequence)
            else itertools.islice(items, start, None)
        )
    try:
        if async_items is not None:
            workers.feed(async_items, start)
        exhausted = False
        while True:
            if not exhausted and async_items is None:
                exhausted = workers.fill(sync_items)
            # The only yield sits here, between waits on the workers and outside any task
            # group: the consumer may take its time, be cancelled or close us, and the
            # finally below still owns the cleanup.
            if workers.watermark.value > reported:
                reported = workers.watermark.value
                yield reported
            if exhausted and not workers.running:
                return
            exhausted = await workers.collect() or exhausted
    finally:
        try:
            await workers.close()
        finally:
            if isinstance(async_items, AsyncGenerator):
                await async_items.aclose()


class _Workers(Generic[T]):
    """The workers in flight for one `concurrently` run, and the watermark of the finished ones.

    A sync source is read by the consumer's task between waits; an async one by a feeder task
    of its own, so that a source waiting for more never hides a finished or failed worker: one
    wake-up serves the workers and the feeder alike.
    """

    __slots__ = (
        "_deliver",
        "_feeder",
        "_finished",
        "_limit",
        "_next",
        "_on_done",
        "_results",
        "_room",
        "_wakeup",
        "_worker",
        "running",
        "watermark",
    )

    def __init__(
        self,
        worker: Callable[[T], Awaitable[object]],
        start: int,
        limit: int,
        deliver: Callable[[object], object] | None,
    ) -> None:
        self._worker = worker
        self._limit = limit
        self._next = start
        self.watermark = Watermark(start)
        self.running: dict[asyncio.Future[object], int] = {}
        # Done callbacks feed a queue instead of ``asyncio.wait``, which would re-register a
        # callback on every task in flight at each wake-up: O(limit) per item instead of O(1).
        self._finished: collections.deque[asyncio.Future[object]] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._feeder: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._deliver = deliver
        # Results finished ahead of the watermark, kept only when *deliver* takes them.
        self._results: dict[int, object] = {}
        # Bound once: passing ``self._finished_one`` would build a new bound method per item.
        self._on_done = self._finished_one

    def fill(self, items: Iterator[T]) -> bool:
        """Start workers on *items* until *limit* are in flight; return whether *items* ran out."""
        running = self.running
        limit = self._limit
        if len(running) >= limit:
            return False
        for item in items:
            self._start(item)
            if len(running) >= limit:
                return False
        return True

    def feed(self, items: AsyncIterator[T], skip: int) -> None:
        """Start the task that reads *items*, past the first *skip*, into workers."""
        self._feeder = asyncio.ensure_future(self._feed(items, skip))
        self._feeder.add_done_callback(self._wake_up)

    async def _feed(self, items: AsyncIterator[T], skip: int) -> None:
        """Read *items* one at a time, each as soon as a worker may start on it, and start it.

        Returns once *items* run out; raises what reading them or starting a worker raised.
        """
        for _ in range(skip):
            try:
                await anext(items)
            except StopAsyncIteration:
                return
        running = self.running
        limit = self._limit
        while True:
            while len(running) >= limit:
                self._room = asyncio.get_running_loop().create_future()
                try:
                    await self._room
                finally:
                    self._room = None
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            self._start(item)

    def _start(self, item: T) -> None:
        task = asyncio.ensure_future(self._worker(item))
        task.add_done_callback(self._on_done)
        self.running[task] = self._next
        self._next += 1

    def _finished_one(self, task: asyncio.Future[object]) -> None:
        self._finished.append(task)
        self._wake_up(task)

    def _wake_up(self, _: object) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def collect(self) -> bool:
        """Wait until a worker or the feeder finishes, then count every finished worker.

        Returns:
            Whether the async source has run out.

        Raises:
            BaseException: The first failed worker's exception, or the source's, as itself.
        """
        feeder = self._feeder
        if not self._finished and (feeder is None or not feeder.done()):
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        self._count()
        room = self._room
        if room is not None and not room.done() and len(self.running) < self._limit:
            room.set_result(None)
        if feeder is None or not feeder.done():
            return False
        feeder.result()
        self._feeder = None
        return True

    def _count(self) -> None:
        finished = self._finished
        running = self.running
        mark_done = self.watermark.done
        deliver = self._deliver
        while finished:
            task = finished.popleft()
            position = running.pop(task)
            result = task.result()
            if deliver is None:
                mark_done(position)
            else:
                self._pass(deliver, position, result)

    def _pass(self, deliver: Callable[[object], object], position: int, result: object) -> None:
        """Keep *result* until the watermark passes *position*; deliver what it passes, in order."""
        results = self._results
        results[position] = result
        for passed in range(self.watermark.value, self.watermark.done(position)):
            deliver(results.pop(passed))

    async def close(self) -> None:
        """Cancel the workers in flight and the feeder, and wait until none is running."""
        tasks: list[asyncio.Future[Any]] = list(self.running)
        if self._feeder is not None:
            tasks.append(self._feeder)
        if tasks:
            await _cancel_and_wait(tasks)


async def _cancel_and_wait(tasks: Collection[asyncio.Future[Any]]) -> None:
    """Cancel *tasks* and wait until every one has finished, even if cancelled meanwhile.

    Raises:
        asyncio.CancelledError: The caller was cancelled while waiting; raised once all
            tasks are done, so none is left running.
    """
    for task in tasks:
        # Finished ones too: that marks their exceptions retrieved, so asyncio does not log
        # the failures that lost the race to propagate.
        task.cancel()
    pending = set(tasks)
    interrupted: asyncio.CancelledError | None = None
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError as cancelled:
            interrupted = cancelled
    if interrupted is not None:
        raise interrupted
