"""The engine: one run of one key, its latest cursor, its phase, and how it ends.

`Job` is the engine under both faces: `job()` hands it out as an async context manager, and
`@resumable` enters it and feeds it the generator's cursors. The hot path (one cursor) is a
few attribute writes; the store is the writer's (`resumable._writer`), and triggers see the
job through the narrow `Controls` protocol.

A run moves through phases: new, running, stopping (a migration, abort or signal asked it to
take no more work), closing (its block is being left), parked (migrated: saved, waiting to be
stopped) and done. Why it stops is its end (`End`), and the status it writes last is looked
up from that end.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from resumable._codec import Codec
from resumable._commit import Commit
from resumable._defaults import default_sink, surroundings
from resumable._errors import ResumableError, StaleWriterError, StoreError
from resumable._options import JobOptions
from resumable._outbox import Outbox
from resumable._record import Outcome, Status
from resumable._snapshot import Raw, immutable
from resumable._stores import Store, check_key
from resumable._triggers import Detach
from resumable._work import Work
from resumable._writer import SAVE_TIMEOUT, Writer

C = TypeVar("C")

log = logging.getLogger("resumable")

_NEVER = math.inf
_WARN_AT = 0.8  # of an urgent save's budget: say so loudly if it has not landed by then


class Phase(enum.Enum):
    """Where a run is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSING = "closing"
    PARKED = "parked"
    DONE = "done"


class End(enum.Enum):
    """Why a run ends; each end writes one status last."""

    COMPLETED = "completed"
    MIGRATED = "running"
    ABORTED = "aborted"
    CANCELLED = "aborted"  # noqa: PIE796 - a distinct reason that writes the same status
    FAILED = "failed"
    FENCED = "fenced"  # another run owns the key: nothing is written


class FinishedJobError(ResumableError, RuntimeError):
    """A `Job` was used after its run ended, or entered twice."""


class Job(Generic[C]):
    """One run of a resumable job: the resume point, the latest cursor and how the run ends.

    Get one from `job()` (or let `@resumable` make it) and enter it with ``async with``.

    Attributes:
        key: The key the state lives under.
        store: Where the state lives (resolved when the run starts).
        cursor: The resume point, then the latest advanced cursor.
        resumed: Whether a persisted cursor was found at start.
        resumed_from: The persisted cursor the run started from, or ``None``.
        stopping: Set when the job should take no new work (migration, abort, signal).
        yields: Cursors advanced in this run (under `drive`, published lazily: `refresh`).
        interval: Seconds between periodic saves, as resolved at start (``None``: none).
        outcome: How the run ended, once it has.
        out: The run's `Outbox` (using it makes the job deliver outputs to its sink).
    """

    def __init__(self, key: str, *, cursor: C, cursor_type: Any, options: JobOptions) -> None:
        self.key = check_key(key, options.store)
        self.cursor: C = cursor
        self.store: Store | None = options.store
        self.resumed = False
        self.resumed_from: C | None = None
        self.stopping = False
        self.interval: float | None = None
        self.yields = 0
        self.outcome: Outcome[C] | None = None
        self._options = options
        self._cursor_type = cursor_type
        self._phase = Phase.NEW
        self._end: End | None = None
        self._failure: ResumableError | None = None
        self._every = options.every
        self._next_every = _NEVER if options.every is None else float(options.every)
        # The hot path attends (`_attend`) once the count reaches `_due`: at the first cursor
        # (to check that it serializes), every N cursors, and at once after a stop.
        self._due = 1.0
        self._checked = False
        self._copying = False
        self._advanced = False
        self._snap: Any = None
        self._work = Work()
        self._left = asyncio.Event()
        self._unpark = asyncio.Event()
        self._deadline: float | None = None
        self._detach: list[Detach] = []
        self._scoped = True
        self._outbox: Outbox[Any] = Outbox(options.converter, self._outbox_full)
        self._outbox.limit(options.max_size)
        self._marking = options.sink is not None
        self._commit: Commit | None = None
        self._codec: Codec[C]
        self._writer: Writer

    def __repr__(self) -> str:
        return f"<Job {self.key!r} {self._phase.value} cursor={self.cursor!r} store={self.store!r}>"

    @property
    def out(self) -> Outbox[Any]:
        """The run's outbox: what is pushed into it reaches the sink exactly once.

        Raises:
            FinishedJobError: The run has ended.
        """
        if self._phase is Phase.DONE:
            raise self._unusable("out")
        if not self._marking:
            self._marking = True
            if self._commit is not None:
                self._commit.active = True
        return self._outbox

    # -- the hot path -------------------------------------------------------------------

    def advance(self, cursor: C) -> None:
        """Record that everything before *cursor* is done. O(1); never waits for I/O.

        Raises:
            CursorTypeError: The cursor cannot be stored.
            FinishedJobError: The run has ended.
        """
        if self._phase is Phase.DONE or self._phase is Phase.NEW:
            raise self._unusable("advance()")
        if self._work.cut:
            return  # the work behind a cursor advanced after the cut may not have happened
        self.cursor = cursor
        if self._copying:
            self._snap = Raw(self._codec.raw(cursor, "advanced"))
        if self._marking:
            self._outbox.mark()
        self.yields += 1
        if self.yields >= self._due:
            self._attend()

    def _attend(self) -> bool:
        """Handle what the hot path was asked to look at; return whether to stop pulling."""
        if not self._checked:
            self._check_first()
        if self.yields >= self._next_every:
            self._next_every = self.yields + (self._every or 0)
            self._writer.wake()
        if self.stopping:
            self._due = 0.0
        elif not self._checked:
            self._due = self.yields + 1.0
        else:
            self._due = self._next_every
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

    def _latest(self) -> Any:
        """The snapshot a save writes now: the cursor at the cut, the copy, or the cursor."""
        if self._work.cut:
            return self._work.frozen
        if self._copying or not self._advanced:
            return self._snap
        return self.cursor

    async def drive(self, cursors: AsyncIterator[C]) -> None:
        """Advance through *cursors* until they end or the job stops taking work.

        The loop under ``@resumable``: it pulls each cursor straight from the iterator and
        does nothing else per cursor unless something asked for attention.
        """
        loop = self._drive_marking if self._marking else self._drive
        await loop(cursors)

    async def _drive(self, cursors: AsyncIterator[C]) -> None:
        """`drive` for a job without an outbox."""
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
                        await asyncio.sleep(0)  # let the writer run, even if the job never awaits
        finally:
            self.yields = int(n)
            self._left.set()

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

    # -- controls for triggers --------------------------------------------------------------

    @property
    def saves(self) -> int:
        """Store writes made in this run."""
        return self._writer.saves if self._phase is not Phase.NEW else 0

    @property
    def persisted(self) -> C:
        """The cursor of the latest write (the resume point before the first)."""
        if self._phase is Phase.NEW:
            return self.cursor
        return self._codec.restore(self._writer.persisted)

    def refresh(self) -> None:
        """Ask the hot path to bring `yields` up to date at the next cursor."""
        self._due = 0.0

    def pause(self) -> None:
        """Stop taking new work from the next cursor on; returns at once.

        An event source that can act synchronously calls this the moment a migration is
        announced, before the (asynchronous) `migrate` that saves.
        """
        if self._end is None:
            self._end = End.MIGRATED
        self._stop()

    def _outbox_full(self) -> None:
        """The outbox holds its bound: save soon, and let the writer in at the next cursor."""
        self.request_save()
        self._due = 0.0

    def request_save(self) -> None:
        """Ask the writer to save the latest cursor soon (coalesced); returns at once."""
        if self._phase in (Phase.RUNNING, Phase.STOPPING):
            self._writer.wake()

    async def save(self, *, timeout: float | None = None) -> None:
        """Write the latest cursor now, unless it is already the persisted one.

        Raises:
            StoreError: The store still failed after retrying for *timeout* seconds.
            StaleWriterError: Another run took the key over.
            FinishedJobError: The run has ended.
        """
        if self._phase is Phase.DONE or self._phase is Phase.NEW:
            raise self._unusable("save()")
        deadline = asyncio.get_running_loop().time() + (timeout or SAVE_TIMEOUT)
        await self._writer.urgent(self._latest, "running", deadline)

    async def migrate(self, timeout: float | None = None) -> None:
        """Persist at once within *timeout* seconds, then take no new work.

        The run does not end: it waits for the platform to stop the process, and the next
        run resumes from the saved cursor. A failure is logged, not raised: the caller is an
        event handler with nobody to raise to.
        """
        if self._phase not in (Phase.RUNNING, Phase.STOPPING):
            log.info("job %r: migrating, but the run has already ended its work", self.key)
            return
        self.pause()
        budget = timeout if timeout is not None else SAVE_TIMEOUT
        log.info("job %r: migrating, saving cursor %r within %.1f s", self.key, self.cursor, budget)
        if await self._urgent("running", budget, "before migration"):
            log.info("job %r: saved %r before migration", self.key, self.persisted)

    async def abort(self, reason: str = "aborted", *, budget: float | None = None) -> None:
        """Persist, stop the work (after its grace) and end the run ``"aborted"``.

        A second abort cuts the work in flight at once. *budget* bounds the saves in
        seconds (default: ``SAVE_TIMEOUT``).
        """
        if self._phase in (Phase.NEW, Phase.DONE) or self._failure is not None:
            return
        if self._end is End.ABORTED:
            self._cut("a second stop")
            return
        self._end = End.ABORTED
        self._stop()
        if self._phase is Phase.PARKED:
            self._unpark.set()
            return
        if self._phase is Phase.CLOSING:
            return  # the run is ending already: its last write says how
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = budget if budget is not None else SAVE_TIMEOUT
        self._deadline = start + total
        log.info("job %r: %s, saving cursor %r and stopping", self.key, reason, self.cursor)
        await self._urgent("aborted", total, "on abort")
        if self._left.is_set():
            return
        # The work in flight gets its grace to reach its next yield, within half of what
        # the budget has left, so that the last save still fits.
        grace = min(self._options.grace, max(0.0, (self._deadline - loop.time()) / 2))
        try:
            async with asyncio.timeout(grace):
                await self._left.wait()
        except TimeoutError:
            self._cut(f"the work in flight did not reach its next yield within {grace:.1f} s")

    def _stop(self) -> None:
        self.stopping = True
        self._due = 0.0
        if self._phase is Phase.RUNNING:
            self._phase = Phase.STOPPING

    def _cut(self, why: str) -> None:
        """Cancel the work in flight; no cursor it yields afterwards is persisted."""
        if self._phase in (Phase.RUNNING, Phase.STOPPING) and not self._work.cut:
            log.info("job %r: %s; cancelling it", self.key, why)
            self._outbox.freeze()
            self._work.cut_now(self._latest())

    def _fail(self, exc: ResumableError) -> None:
        """End the run with *exc* (raised where the job's body is), cutting its work."""
        if self._failure is None:
            self._failure = exc
        self._stop()
        self._cut(f"the run failed: {exc}")

    async def _urgent(self, status: Status, budget: float, what: str) -> bool:
        """An urgent save within *budget*; failures are logged (a fencing one fails the run)."""
        loop = asyncio.get_running_loop()
        warn = loop.call_later(
            budget * _WARN_AT,
            lambda: log.warning(
                "job %r: the save %s has not landed after %.1f s of its %.1f s budget",
                self.key,
                what,
                budget * _WARN_AT,
                budget,
            ),
        )
        try:
            return await self._writer.urgent(self._latest, status, loop.time() + budget)
        except StaleWriterError as exc:
            self._fail(exc)
        except ResumableError as exc:
            log.error("job %r: could not save %s within %.1f s: %s", self.key, what, budget, exc)  # noqa: TRY400
        finally:
            warn.cancel()
        return False

    def _unusable(self, what: str) -> FinishedJobError:
        state = "has not started" if self._phase is Phase.NEW else "has ended"
        return FinishedJobError(
            f"{what} on job {self.key!r}, whose run {state}: use a Job inside its "
            "`async with` block, and make a new one for each run."
        )

    # -- life cycle ---------------------------------------------------------------------

    def session(self, *, scoped: bool) -> Job[C]:
        """Enter this job with ``async with``; *scoped*: the entering task is the job's work.

        A watched run (``async for cursor in run``) is not scoped: its work is only the pull
        of each cursor, never what the watcher does with it.
        """
        self._scoped = scoped
        return self

    async def __aenter__(self) -> Job[C]:
        """Claim the key and start the run."""
        if self._phase is not Phase.NEW:
            raise FinishedJobError(
                f"job {self.key!r} was already started; make a new one for each run"
            )
        where = surroundings(self._options)
        self.store = where.store
        self.key = check_key(self.key, where.store)
        self._codec = self._options.codec(self.key, where.store, self._cursor_type)
        key, sink = self.key, self._options.sink
        self._commit = Commit(
            key, self._outbox, lambda: default_sink(key, sink), active=self._marking
        )
        self._commit.store = where.store
        self._writer = Writer(
            self.key,
            where.store,
            self._codec,
            quarantine=self._options.on_corrupt == "quarantine",
            commit=self._commit,
        )
        self._snap = Raw(self._codec.raw(self.cursor, "fresh-start"))
        record = await self._writer.claim(self._snap)
        self._marking = self._commit.active
        await self._deliver_pending()
        if record is not None:
            self.cursor = self.resumed_from = record.cursor
            self._snap = self._writer.persisted
            self.resumed = True
            log.info(
                "job %r: resuming from cursor %r (%s, seq %d, written by %s at %s)",
                self.key,
                record.cursor,
                record.status,
                record.seq,
                record.owner,
                record.updated_at.isoformat(timespec="seconds"),
            )
        else:
            log.info("job %r: no saved state in %r, starting fresh", self.key, self.store)
        self._phase = Phase.RUNNING
        try:
            for trigger in where.triggers:
                self._detach.append(trigger.attach(self))
        except BaseException:
            self._detach_all()
            raise
        self.interval = where.interval
        self._writer.start(self._latest, where.interval, self._fail)
        if self._scoped:
            await self._work.enter()
        return self

    async def _deliver_pending(self) -> None:
        """Deliver what the record resumed from left pending; a sink failure waits for a save."""
        assert self._commit is not None
        deadline = asyncio.get_running_loop().time() + SAVE_TIMEOUT
        try:
            await self._commit.deliver(deadline)
        except StoreError as exc:
            log.warning("job %r: %s; the next save tries again", self.key, exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # Before any await: an abort arriving from now on must not cut our own cleanup.
        self._phase = Phase.CLOSING
        self._left.set()
        exc = await self._work.leave(exc)
        if exc is not None and self._work.cut and isinstance(exc, Exception):
            log.warning("job %r: the work raised as it was cut", self.key, exc_info=exc)
            exc = None
        end, failure = self._ending(exc)
        try:
            await self._finish(end, raising=exc is None)
            if end is End.MIGRATED:
                self._phase = Phase.PARKED
                log.info("job %r: saved; waiting for the platform to stop this process", self.key)
                await self._unpark.wait()
                end = End.ABORTED
                await self._finish(end, raising=False)
        finally:
            self._detach_all()
            await self._writer.stop()
            self._phase = Phase.DONE
            self.outcome = Outcome(
                key=self.key,
                status="completed" if end is End.COMPLETED else "aborted",
                cursor=self.persisted,
                resumed_from=self.resumed_from,
                yields=self.yields,
                saves=self._writer.saves,
                outputs=self._commit.outputs if self._commit is not None else 0,
            )
        if failure is not None:
            raise failure
        return exc is None

    def _ending(self, exc: BaseException | None) -> tuple[End, ResumableError | None]:
        """Look up how the run ends, and what it raises that is not already propagating."""
        if isinstance(self._failure, StaleWriterError) or isinstance(exc, StaleWriterError):
            return End.FENCED, self._failure if exc is None else None
        if self._failure is not None:
            return End.FAILED, self._failure if exc is None else None
        if exc is None:
            return self._end or End.COMPLETED, None
        return (End.FAILED if isinstance(exc, Exception) else End.CANCELLED), None

    async def _finish(self, end: End, *, raising: bool) -> None:
        """The last write of the run: shielded from cancellation and bounded in time."""
        if end is End.FENCED:
            return
        loop = asyncio.get_running_loop()
        deadline = max(self._deadline or 0.0, loop.time() + SAVE_TIMEOUT)
        status: Status = end.value
        save = asyncio.ensure_future(
            self._writer.urgent(self._latest, status, deadline, final=end is not End.MIGRATED)
        )
        # Whoever ends up waiting for it reports its failure; never asyncio's "never retrieved".
        save.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            await asyncio.shield(save)
        except asyncio.CancelledError:
            # Cancelled again while saving: let the save finish, then let the cancellation go.
            await asyncio.wait([save], timeout=max(0.0, deadline - loop.time()))
            if save.done() and not save.cancelled() and save.exception() is not None:
                log.error("job %r: could not write its final state: %s", self.key, save.exception())  # noqa: TRY400
            raise
        except ResumableError as exc:
            if raising:
                raise
            log.error(  # noqa: TRY400 - the job's own exception follows with its traceback
                "job %r: could not write its final state (%s); the exception that ended it follows",
                self.key,
                exc,
            )

    def _detach_all(self) -> None:
        while self._detach:
            detach = self._detach.pop()
            try:
                detach()
            except Exception:
                log.exception("job %r: a trigger failed to detach", self.key)
