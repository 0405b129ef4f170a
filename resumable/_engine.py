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
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

from resumable._codec import Codec
from resumable._commit import Commit
from resumable._defaults import default_sink, surroundings
from resumable._effects import Effects, enter
from resumable._errors import (
    CursorTypeError,
    FinishedJobError,
    ResumableError,
    SinkError,
    StaleWriterError,
    StoreError,
)
from resumable._feeding import Feeding
from resumable._options import JobOptions
from resumable._outbox import Outbox
from resumable._phase import End, Phase
from resumable._record import Outcome, Status
from resumable._snapshot import Raw
from resumable._stores import Store, check_key
from resumable._sync import SyncJob
from resumable._triggers import Detach
from resumable._work import Work
from resumable._writer import Writer

C = TypeVar("C")

log = logging.getLogger("resumable")

_NEVER = math.inf


class Job(Feeding[C]):
    """One run of a resumable job: the resume point, the latest cursor and how the run ends.

    Get one from `job()` (or let `@resumable` make it) and enter it with ``async with``.
    What it shows of the run (``key``, ``store``, ``cursor``, ``resumed``, ``resumed_from``,
    ``stopping``, ``yields``, ``saves``, ``persisted``, ``outcome``, ``out``) is `RunView`'s,
    held here as attributes; the plain ``with`` face (`SyncJob`) shows the same.

    Attributes:
        interval: Seconds between periodic saves, as resolved at start (``None``: none).
    """

    __slots__ = ("_face",)  # the plain ``with`` face, once entered so

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
        self._open = False  # between the start and the end of the run
        self._end: End | None = None
        self._failure: ResumableError | None = None
        self._every = options.every
        self._next_every = _NEVER if options.every is None else float(options.every)
        # The hot path attends (`_attend`) once the count reaches `_due`: at the first cursor
        # (to check that it serializes), every N cursors, and at once after a stop.
        self._due = 1.0
        self._limit = 1
        self._taking = False  # advancing records cursors: started, not ended, not cut
        self._checked = False
        self._copying = False
        self._advanced = False
        self._snap: Any = None
        self._work = Work()
        self._left = asyncio.Event()
        self._unpark = asyncio.Event()
        self._deadline: float | None = None
        self._stop_saved = False  # an abort has made its save (or tried, within its budget)
        self._stop_hooks: list[Callable[[], None]] = []
        self._detach: list[Detach] = []
        self._outbox: Outbox[Any] = Outbox(options.converter, self._outbox_full)
        self._outbox.limit(options.max_size)
        self._marking = options.sink is not None
        self._commit: Commit | None = None
        # The loop the engine runs on when the work runs in another thread (a plain generator).
        self._home: asyncio.AbstractEventLoop | None = None
        self._hosting: Callable[[], None] | None = None
        self._face: SyncJob[C] | None = None
        self._codec: Codec[C]
        self._writer: Writer

    def __repr__(self) -> str:
        return f"<Job {self.key!r} {self._phase.value} cursor={self.cursor!r} store={self.store!r}>"

    # -- life cycle ---------------------------------------------------------------------

    @property
    def out(self) -> Outbox[Any]:
        """The run's outbox (see `RunView.out`); the first use makes the run deliver outputs."""
        if self._phase is Phase.DONE:
            raise self._unusable("out")
        if not self._marking:
            self._marking = True
            if self._commit is not None:
                self._commit.active = True
        return self._outbox

    def effects(self, name: str) -> Effects | None:
        """The run's side effects of record field *name*, for the work to ask for one.

        The next cursor takes what was asked (`resumable._effects`), so it attends to it.
        ``None`` outside the run (before its start, after its end).
        """
        if not self._open:
            return None
        effects = self._writer.effects_of(name)
        self._attend_at(0.0)
        return effects

    @contextlib.asynccontextmanager
    async def hosted(self, home: asyncio.AbstractEventLoop | None = None) -> AsyncIterator[Job[C]]:
        """Enter this job with ``async with``, for work that is not the entering task.

        Under a plain ``async with job``, the block is the work that a cut cancels. A
        watched run's work is only the pull of each cursor (`watch` scopes each), never what
        the watcher does with it; a plain generator's runs in another thread, which no cut
        stops. *home*: the loop the engine runs on then, through which the hot path wakes
        the writer.
        """
        await self._start()
        self._home = home
        try:
            yield self
        except BaseException as exc:
            if not await self.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await self.__aexit__(None, None, None)

    def __enter__(self) -> SyncJob[C]:
        """Enter this job with a plain ``with``: its engine runs on a loop of its own."""
        if self._face is None:
            self._face = SyncJob(
                self,
                self.hosted,
                self._options,
                advance=self.advance,
                drive=self.drive_plain,
                save=self.save,
                request_save=self.request_save,
            )
        return self._face.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._face is not None
        return self._face.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Job[C]:
        """Claim the key and start the run; the entering task is the work a cut cancels."""
        await self._start()
        await self._work.enter()
        return self

    async def _start(self) -> None:
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
            timing=where.timing,
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
        self._open = self._taking = True
        try:
            for trigger in where.triggers:
                self._detach.append(trigger.attach(self))
        except BaseException:
            self._detach_all()
            raise
        self.interval = where.interval
        self._hosting = enter(self)
        self._writer.start(self._latest, where.interval, self._fail)

    async def _deliver_pending(self) -> None:
        """Deliver what the record resumed from left pending; a sink failure waits for a save."""
        deadline = asyncio.get_running_loop().time() + self._writer.timing.save
        try:
            await self._writer.deliver(deadline)
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
        self._outbox.close(self.key)  # the work has left: a later push belongs to no cursor
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
                log.info(
                    "job %r: saved cursor %r after the work in flight; waiting for the platform "
                    "to stop this process",
                    self.key,
                    self.persisted,
                )
                await self._unpark.wait()
                end = End.ABORTED
                await self._finish(end, raising=False)
        finally:
            if self._hosting is not None:
                self._hosting()
            self._detach_all()
            await self._writer.stop()
            self._phase = Phase.DONE
            self._open = self._taking = False
            self.outcome = Outcome(
                key=self.key,
                status="completed" if end is End.COMPLETED else "aborted",
                cursor=self.persisted,
                resumed_from=self.resumed_from,
                yields=self.yields,
                saves=self._writer.saves,
                outputs=self._commit.outputs if self._commit is not None else 0,
            )
            log.info(
                "job %r: ended %s; the record holds cursor %r (%s, seq %d) after %d yields and "
                "%d saves in this run",
                self.key,
                end.name.lower(),
                self.outcome.cursor,
                self._writer.status,
                self._writer.seq,
                self.yields,
                self._writer.saves,
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
        status = end.status
        if status is None:
            return
        loop = asyncio.get_running_loop()
        # Within the run's deadline when a stop set one (a second at least: the process may
        # outlive it), else the usual budget.
        now = loop.time()
        budget = self._writer.timing.save
        deadline = now + budget if self._deadline is None else max(self._deadline, now + 1.0)
        save = asyncio.ensure_future(self._last_save(end, status, deadline))
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

    async def _last_save(self, end: End, status: Status, deadline: float) -> None:
        """Write the run's last record, then deliver the outputs it holds before *deadline*.

        The record is what a stop's budget is for: a delivery that does not finish in time
        after a stop is logged, and the record keeps its outputs pending for the next run.
        Only a completed run raises it: not all of its outputs reached the sink.
        """
        try:
            await self._writer.urgent(self._latest, status, deadline, final=end is not End.MIGRATED)
        except CursorTypeError:
            # The record says the run failed, at the last cursor it could store: the outputs
            # that cursor covers still go out.
            await self._deliver_last(deadline, raising=False)
            raise
        await self._deliver_last(deadline, raising=end is End.COMPLETED)

    async def _deliver_last(self, deadline: float, *, raising: bool) -> None:
        try:
            await self._writer.deliver(deadline)
        except SinkError as exc:
            if raising:
                raise
            log.warning("job %r: %s", self.key, exc)

    def _detach_all(self) -> None:
        while self._detach:
            detach = self._detach.pop()
            try:
                detach()
            except Exception:
                log.exception("job %r: a trigger failed to detach", self.key)
