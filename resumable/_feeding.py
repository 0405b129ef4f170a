"""`Feeding`: how cursors reach the engine, the hot path of every job.

One cursor is a few attribute writes: ``advance`` (the `job` form), and the loops that pull
cursors from an async generator (`drive`), a plain one (`drive_plain`) or hand them on to a
watcher (`watch`). Everything else happens only when the count reaches ``_due``: the
first cursor's check, every N cursors, and at once after a stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import TypeVar

from resumable._phase import Phase
from resumable._snapshot import Raw, immutable
from resumable._stops import Stops

C = TypeVar("C")


class Feeding(Stops[C]):
    """The hot path of a job; `Job` is built on it."""

    __slots__ = ()

    _open: bool
    _taking: bool
    _limit: int
    _every: int | None
    _next_every: float
    _checked: bool

    def advance(self, cursor: C) -> None:
        """Record that everything before *cursor* is done. O(1); never waits for I/O.

        Raises:
            CursorTypeError: The cursor cannot be stored.
            FinishedJobError: The run has ended.
        """
        if not self._taking:  # one bool for the rare cases: the phase enum costs ~100 ns
            if not self._open:
                raise self._unusable("advance()")
            return  # cut: the work behind a cursor advanced now may not have happened
        self.cursor = cursor
        if self._copying:
            self._snap = Raw(self._codec.raw(cursor, "advanced"))
        if self._marking:
            self._outbox.mark()
        self.yields += 1
        if self.yields >= self._limit:  # an int, as `yields` is: the cheapest comparison
            self._attend()

    async def commit(self, cursor: C) -> bool:
        """Advance to *cursor* and write it at once; return whether a record holding it landed.

        For work that must act on a cursor only once it is persisted (deliver what it
        stands for): ``False`` says that no record holds *cursor* and none will, because
        the run stopped recording cursors (its work was cut, or its last save was made).
        The write is bounded by the run's deadline when a stop set one.

        Raises:
            StoreError: The store still failed at the deadline.
            StaleWriterError: Another run took the key over.
            CursorTypeError: The cursor cannot be stored.
            FinishedJobError: The run has ended.
        """
        if self._phase is Phase.DONE or self._phase is Phase.NEW:
            raise self._unusable("commit()")
        if not self._taking:
            return False
        self.advance(cursor)
        snapshot = self._latest()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._writer.timing.save
        if self._deadline is not None:
            deadline = min(deadline, max(self._deadline, loop.time() + 0.1))
        await self._writer.urgent(self._latest, "running", deadline)
        return self._writer.persisted is snapshot

    def _attend(self) -> bool:
        """Handle what the hot path was asked to look at; return whether to stop pulling."""
        for effect in self._writer.effects.values():
            effect.take()  # what the work asked for before this cursor (a charge) is its own
        if not self._checked:
            self._check_first()
        if self.yields >= self._next_every:
            self._next_every = self.yields + (self._every or 0)
            if self._home is None:
                self._writer.wake()
            elif not self._writer.pending:  # a wake already pending saves this cursor too
                self._home.call_soon_threadsafe(self._writer.wake)
        if self.stopping:
            self._attend_at(0.0)
        elif not self._checked:
            self._attend_at(self.yields + 1.0)
        else:
            self._attend_at(self._next_every)
        return self.stopping

    def _check_first(self) -> None:
        """Check the run's first cursor and choose whether cursors are copied at each yield."""
        cursor = self.cursor
        self._advanced = True
        self._codec.check(cursor)
        self._checked = cursor is not None  # None tells nothing about later cursors
        self._copying = not immutable(cursor)
        if self._copying:
            self._snap = Raw(self._codec.raw(cursor))

    async def drive(self, cursors: AsyncIterator[C]) -> None:
        """Advance through *cursors* until they end or the job stops taking work.

        The loop under ``@resumable``: it pulls each cursor straight from the iterator and
        does nothing else per cursor unless something asked for attention.
        """
        if self._marking:
            await self._drive_marking(cursors)
            return
        # The count lives in a float local: an attribute write per cursor costs ~8 % more,
        # and CPython takes floats from a free list where every int past 256 is allocated.
        n = float(self.yields)
        try:
            while not self.stopping:
                if self._copying:
                    async for cursor in cursors:
                        self.cursor = cursor
                        self._snap = Raw(self._codec.raw(cursor))
                        n += 1.0
                        if n >= self._due:
                            self.yields = int(n)
                            if self._attend():
                                return
                            await asyncio.sleep(
                                0
                            )  # let the writer run, even if the job never awaits
                    return
                async for self.cursor in cursors:
                    n += 1.0
                    if n >= self._due:
                        self.yields = int(n)
                        if self._attend():
                            return
                        if self._copying:
                            break  # a mutable cursor: go on in the copying loop
                        await asyncio.sleep(0)
                else:
                    return
        finally:
            self.yields = int(n)
            self._left.set()

    async def _drive_marking(self, cursors: AsyncIterator[C]) -> None:
        """`drive` for a job with an outbox: each cursor also marks the items it covers."""
        box = self._outbox
        mark = box.mark
        n = float(self.yields)
        try:
            if self.stopping:
                return
            async for cursor in cursors:
                self.cursor = cursor
                if self._copying:
                    self._snap = Raw(self._codec.raw(cursor))
                mark()
                n += 1.0
                if n >= self._due:
                    self.yields = int(n)
                    if self._attend():
                        return
                    if box.full:
                        await self._writer.catch_up()
                    else:
                        await asyncio.sleep(0)  # the writer runs, even if the job never awaits
                    if self.stopping:  # a stop that came while waiting: pull no more work
                        return
        finally:
            self.yields = int(n)
            self._left.set()

    def drive_plain(self, cursors: Iterator[C]) -> None:
        """`drive` for a plain generator, in the thread the work runs in (see `SyncJob`).

        The engine's loop runs elsewhere: a stop shows up here as `stopping`, which is read
        again after each attention because the loop may have set it meanwhile.
        """
        if self._marking:
            self._drive_plain_marking(cursors)
        else:
            self._drive_plain(cursors)

    def _drive_plain(self, cursors: Iterator[C]) -> None:
        """`drive_plain` for a job without an outbox: the tight loop."""
        n = float(self.yields)
        try:
            while not self.stopping:
                if self._copying:
                    for cursor in cursors:
                        self.cursor = cursor
                        self._snap = Raw(self._codec.raw(cursor))
                        n += 1.0
                        if n >= self._due:
                            self.yields = int(n)
                            if self._attend() or self.stopping:
                                return
                    return
                for self.cursor in cursors:
                    n += 1.0
                    if n >= self._due:
                        self.yields = int(n)
                        if self._attend() or self.stopping:
                            return
                        if self._copying:
                            break
                else:
                    return
        finally:
            self.yields = int(n)
            if self._home is not None:  # the grace ends here, not after the generator's close
                self._home.call_soon_threadsafe(self._left.set)

    def _drive_plain_marking(self, cursors: Iterator[C]) -> None:
        """`drive_plain` for a job with an outbox: each cursor marks the items it covers."""
        try:
            for cursor in cursors:
                self.advance(cursor)
                if self.stopping:
                    return
                if self._outbox.full and self._home is not None:
                    # Back-pressure: wait, in this thread, for the writer to take a record.
                    asyncio.run_coroutine_threadsafe(self._writer.catch_up(), self._home).result()
        finally:
            if self._home is not None:
                self._home.call_soon_threadsafe(self._left.set)

    async def watch(self, cursors: AsyncIterator[C]) -> AsyncGenerator[C, None]:
        """Like `drive`, but hand each cursor over once it has been recorded.

        The work is cut (on an abort past its grace) only while it is inside *cursors*,
        never while the caller handles a cursor.
        """
        try:
            while not self.stopping:
                async with self._work.scope():
                    try:
                        cursor = await anext(cursors)
                    except StopAsyncIteration:
                        return
                if self._work.cut:
                    return
                self.advance(cursor)
                if self._outbox.full:
                    await self._writer.catch_up()
                yield cursor
        finally:
            self._left.set()
