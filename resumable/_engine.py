"""The engine: one run of one key, its latest cursor, its writer and its life cycle.

`Job` is the whole engine. `job()` hands it out as an async context manager; the
`@resumable` decorator enters it and feeds it the generator's cursors. The hot path (one
cursor) is `Job.advance`, a few attribute writes; every write to the store happens in a
background writer task, one at a time, always of the latest cursor.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import EllipsisType, TracebackType
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import cattrs
import tenacity

from resumable._codec import Codec, NewerRecordError, Upgrade, make_converter, parse
from resumable._errors import (
    CorruptStateError,
    CursorTypeError,
    InvalidOptionError,
    JobDefinitionError,
    ResumableError,
    StaleWriterError,
    StoreError,
)
from resumable._progress import Progress
from resumable._record import Outcome, Record, Status
from resumable._stores import FileStore, Store, check_key
from resumable._triggers import Detach, Signals, Trigger

C = TypeVar("C")
T = TypeVar("T")

log = logging.getLogger("resumable")

OnCorrupt: TypeAlias = Literal["raise", "quarantine"]
Interval: TypeAlias = float | EllipsisType | None

DEFAULT_INTERVAL = 10.0
"""Seconds between periodic saves when no platform event drives them."""

SAVE_TIMEOUT = 10.0
"""How long one save keeps retrying a failing store before giving up."""

_NEVER = sys.maxsize
_BACKOFF = tenacity.wait_exponential(multiplier=0.02, max=1.0) + tenacity.wait_random(0, 0.02)
_CLAIM_ATTEMPTS = 5


class _ClaimConflictError(Exception):
    """Someone wrote the key between our load and our claim: load again."""


class _Preempted(tenacity.stop.stop_base):
    """Stop retrying once *preempted* says so (an urgent save wants the store)."""

    def __init__(self, preempted: Callable[[], bool]) -> None:
        self._preempted = preempted

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._preempted()


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def resolve_defaults(
    store: Store | None, triggers: Iterable[Trigger] | None, interval: Interval
) -> tuple[Store, list[Trigger], float | None]:
    """Fill in the store, triggers and interval a job left to its surroundings.

    Inside ``async with Actor:`` that is the Actor's key-value store and the platform's
    events; anywhere else a `FileStore` in ``.resumable`` and a timer.
    """
    actor: tuple[Store, list[Trigger]] | None = None
    if "apify" in sys.modules and (store is None or triggers is None):
        actor = importlib.import_module("resumable.apify").actor_defaults()
    if store is None:
        store = actor[0] if actor is not None else FileStore()
    if triggers is None:
        # Inside an Actor the platform's status message shows progress; elsewhere a terminal.
        resolved = [Signals(), *(actor[1] if actor is not None else [Progress()])]
    else:
        resolved = list(triggers)
    if interval is ...:
        driven = any(getattr(t, "drives_periodic_saves", False) for t in resolved)
        interval = None if driven else DEFAULT_INTERVAL
    return store, resolved, interval


class Job(Generic[C]):
    """One run of a resumable job: the resume point, the latest cursor and its persistence.

    Get one from `job()` (or let `@resumable` make it) and enter it with ``async with``.

    Attributes:
        key: The key the state lives under.
        store: Where the state lives (resolved when the job starts).
        cursor: The resume point, then the latest advanced cursor.
        resumed: Whether a persisted cursor was found at start.
        resumed_from: The persisted cursor the run started from, or ``None``.
        stopping: Set when the job should stop taking new work (migration, abort, signal).
        aborting: Set when the job is being aborted (it will end ``"aborted"``).
        yields: Cursors advanced in this run (under `drive`, brought up to date lazily:
            see `refresh`).
        saves: Store writes made in this run.
        persisted: The cursor of the latest write.
        outcome: How the run ended, once it has.
    """

    __slots__ = (
        "_cancellable",
        "_closing",
        "_codec",
        "_converter",
        "_cursor_type",
        "_detach",
        "_due",
        "_every",
        "_failure",
        "_interrupts",
        "_limit",
        "_lock",
        "_max_size",
        "_next_every",
        "_on_corrupt",
        "_owner",
        "_saved_status",
        "_seq",
        "_started",
        "_task",
        "_triggers",
        "_unpark",
        "_upgrade",
        "_urgent",
        "_validated",
        "_version",
        "_wake",
        "_warn_size",
        "_writer",
        "aborting",
        "cursor",
        "interval",
        "key",
        "outcome",
        "persisted",
        "resumed",
        "resumed_from",
        "saves",
        "stopping",
        "store",
        "yields",
    )

    def __init__(
        self,
        key: str,
        *,
        cursor: C,
        cursor_type: Any,
        store: Store | None = None,
        every: int | None = None,
        interval: Interval = ...,
        converter: cattrs.Converter | None = None,
        triggers: Iterable[Trigger] | None = None,
        version: int = 1,
        upgrade: Mapping[int, Upgrade] | None = None,
        on_corrupt: OnCorrupt = "raise",
        warn_size: int = 64 * 1024,
        max_size: int = 1024 * 1024,
    ) -> None:
        self.key = check_key(key, store)
        if every is not None and (not isinstance(every, int) or every < 1):
            raise InvalidOptionError(f"every= must be a positive count of yields, not {every!r}")
        if isinstance(interval, int | float) and interval <= 0:
            raise InvalidOptionError(
                f"interval= must be a positive number of seconds, not {interval!r}"
            )
        if on_corrupt not in ("raise", "quarantine"):
            raise InvalidOptionError(
                f"on_corrupt= must be 'raise' or 'quarantine', not {on_corrupt!r}"
            )
        if not isinstance(version, int) or version < 1:
            raise InvalidOptionError(f"version= must be a positive integer, not {version!r}")
        self.cursor: C = cursor
        self.store: Store = store  # type: ignore[assignment]  # resolved on entry when None
        self.resumed = False
        self.resumed_from: C | None = None
        self.stopping = False
        self.aborting = False
        self.yields = 0
        self.saves = 0
        self.persisted: C = cursor
        self.outcome: Outcome[C] | None = None
        self.interval: Interval = interval
        self._cursor_type = cursor_type
        self._converter = converter if converter is not None else make_converter()
        self._triggers: Iterable[Trigger] | None = triggers
        self._version = version
        self._upgrade = upgrade
        self._on_corrupt: OnCorrupt = on_corrupt
        self._warn_size = warn_size
        self._max_size = max_size
        self._every = every
        self._next_every = every if every is not None else _NEVER
        # The hot path calls _attend() only once yields reach _due: at the first cursor (to
        # check that it serializes), every N yields, and at once after a stop (_due = 0).
        self._due = 1.0
        self._limit = 1
        self._validated = False
        self._owner = _owner_id()
        self._seq = 0
        self._saved_status: Status = "running"
        self._started = False
        self._closing = False
        self._cancellable = True
        self._interrupts = 0
        self._urgent = 0
        self._failure: BaseException | None = None
        self._detach: list[Detach] = []
        self._task: asyncio.Task[Any] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._codec: Codec[C]
        self._lock: asyncio.Lock
        self._wake: asyncio.Event
        self._unpark: asyncio.Event

    def __repr__(self) -> str:
        return f"<Job {self.key!r} cursor={self.cursor!r} store={self.store!r}>"

    # -- the hot path -------------------------------------------------------------------

    def advance(self, cursor: C) -> None:
        """Record that everything before *cursor* is done. O(1); never waits for I/O.

        Raises:
            CursorTypeError: The first cursor of the run cannot be serialized.
        """
        self.cursor = cursor
        self.yields += 1
        if self.yields >= self._limit:
            self._attend()

    def _attend(self) -> bool:
        """Handle what the hot path was asked to look at; return whether to stop pulling."""
        if not self._validated:
            self._validated = True
            self._codec.check(self.cursor)
        if self.yields >= self._next_every and self._every is not None:
            self._next_every = self.yields + self._every
            self._wake.set()
        self._attend_at(0 if self.stopping else self._next_every)
        return self.stopping

    def _attend_at(self, count: int) -> None:
        """Have the hot path call `_attend` once the count reaches *count*."""
        self._limit = count  # compared with the int count of `advance`
        self._due = float(count)  # compared with the float count of `drive` (see there)

    async def drive(self, cursors: AsyncIterator[C]) -> None:
        """Advance through *cursors* until they end or the job stops taking work.

        This is the loop under ``@resumable``: it pulls each cursor straight from the
        iterator and does nothing else per cursor unless something asked for attention.
        """
        if self.stopping:
            return
        # The count lives in a local (an attribute write per cursor costs ~8 % more) and is
        # published whenever the hot path attends; `refresh()` asks for that. It is a float:
        # CPython takes floats from a free list, where every int past 256 is a fresh
        # allocation (~6 ns a cursor), and a float counts exactly up to 2**53.
        n = float(self.yields)
        try:
            async for self.cursor in cursors:
                n += 1.0
                if n >= self._due:
                    self.yields = int(n)
                    if self._attend():
                        break
                    # Let the writer run now, even if the generator itself never awaits.
                    await asyncio.sleep(0)
        finally:
            self.yields = int(n)

    async def watch(self, cursors: AsyncIterator[C]) -> AsyncIterator[C]:
        """Like `drive`, but hand each cursor over once it has been recorded.

        The job's work is only cancelled (on abort) while it is inside *cursors*, never
        while the caller handles a cursor.
        """
        while not self.stopping:
            self._cancellable = True
            try:
                cursor = await anext(cursors)
            except StopAsyncIteration:
                return
            finally:
                self._cancellable = False
            self.advance(cursor)
            yield cursor

    # -- controls for triggers --------------------------------------------------------------

    def refresh(self) -> None:
        """Ask the hot path to bring `yields` up to date at the next cursor.

        Under `drive` (the decorator) the count is published lazily; a progress display
        calls this on its timer, then reads `yields` a moment later.
        """
        self._attend_at(0)

    def pause(self) -> None:
        """Stop taking new work from the next cursor on; returns at once.

        An event source that can act synchronously calls this the moment a migration is
        announced, before the (asynchronous) `migrate` that saves.
        """
        self._stop()

    def request_save(self) -> None:
        """Ask the writer to save the latest cursor soon (coalesced); returns at once."""
        if self._started and not self._closing:
            self._wake.set()

    async def save(self, *, timeout: float | None = None) -> None:
        """Write the latest cursor now, unless it is already the persisted one.

        Raises:
            StoreError: The store still failed after retrying for *timeout* seconds.
            StaleWriterError: Another run took the key over.
        """
        await self._persist("running", timeout=timeout or SAVE_TIMEOUT, urgent=True)

    async def migrate(self, timeout: float | None = None) -> None:
        """Persist at once within *timeout* seconds, then stop taking new work.

        The run does not end: it waits for the platform to stop the process, and the next
        run resumes from the saved cursor. A failure is logged, not raised: the caller is an
        event handler with nobody to raise to.
        """
        budget = timeout if timeout is not None else SAVE_TIMEOUT
        log.info("job %r: migrating, saving cursor %r within %.1f s", self.key, self.cursor, budget)
        self._stop()
        try:
            async with asyncio.timeout(budget):
                await self._persist("running", timeout=budget, urgent=True)
        except StaleWriterError as exc:
            self._fail(exc)
        except (ResumableError, TimeoutError) as exc:
            log.error(  # noqa: TRY400 - the cause is in the message; a traceback adds nothing
                "job %r: could not save before migration within %.1f s: %s. Progress since "
                "cursor %r will run again on the new server.",
                self.key,
                budget,
                exc,
                self.persisted,
            )
        else:
            log.info("job %r: saved %r before migration", self.key, self.persisted)

    async def abort(self, reason: str = "aborted", *, budget: float | None = None) -> None:
        """Persist, stop the job's work (its ``finally`` blocks run) and end it ``"aborted"``.

        *budget* bounds the save in seconds (default: ``SAVE_TIMEOUT``).
        """
        if self.aborting or not self._started:
            return
        self.aborting = True
        self._stop()
        self._unpark.set()
        if self._closing:
            return  # the run is ending already (or parked): its last write says "aborted"
        log.info("job %r: %s, saving cursor %r and stopping", self.key, reason, self.cursor)
        try:
            await self._persist("aborted", timeout=budget or SAVE_TIMEOUT, urgent=True)
        except StaleWriterError as exc:
            self._fail(exc)
        except ResumableError as exc:
            log.error("job %r: could not save on abort: %s", self.key, exc)  # noqa: TRY400
        self._interrupt()

    # -- life cycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Job[C]:
        if self._started:
            raise RuntimeError(f"job {self.key!r} was already started; make a new one per run")
        self._started = True
        self._task = asyncio.current_task()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._unpark = asyncio.Event()
        self.store, triggers, interval = resolve_defaults(self.store, self._triggers, self.interval)
        self.interval = interval
        self.key = check_key(self.key, self.store)
        self._codec = Codec(
            self.key,
            self.store,
            self._cursor_type,
            self._converter,
            version=self._version,
            upgrade=self._upgrade,
            warn_size=self._warn_size,
            max_size=self._max_size,
        )
        opener: Callable[[], Awaitable[object]] | None = getattr(self.store, "open", None)
        if opener is not None:
            await self._retry(opener, what="Opening", timeout=SAVE_TIMEOUT)
        await self._claim()
        try:
            for trigger in triggers:
                self._detach.append(trigger.attach(self))
        except BaseException:
            self._detach_all()
            raise
        self._writer = asyncio.create_task(self._write_loop(), name=f"resumable-writer:{self.key}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # Before any await: an abort arriving from now on must not cancel our own cleanup.
        self._closing = True
        interrupted = self._take_back_interrupts(exc)
        if self._failure is not None:
            status: Status = "failed"
        elif exc is None or interrupted:
            status = "aborted" if self.stopping else "completed"
            if self.stopping and not self.aborting:
                status = "running"
        elif isinstance(exc, Exception):
            status = "failed"
        else:
            status = "aborted"
        fenced_out = isinstance(self._failure, StaleWriterError) or isinstance(
            exc, StaleWriterError
        )
        try:
            if not fenced_out:
                await self._finish(status, raising=exc is None or interrupted)
            if status == "running" and self._failure is None:
                # Migrated: wait to be stopped, still listening for an abort or a signal.
                await self._park()
                status = "aborted"
                await self._finish(status, raising=False)
        finally:
            self._detach_all()
            if self._writer is not None:
                self._writer.cancel()
        self.outcome = Outcome(
            key=self.key,
            status="aborted" if status != "completed" else "completed",
            cursor=self.persisted,
            resumed_from=self.resumed_from,
            yields=self.yields,
            saves=self.saves,
        )
        if self._failure is not None:
            raise self._failure
        return interrupted

    def _take_back_interrupts(self, exc: BaseException | None) -> bool:
        """Undo our own cancellations; return whether *exc* is one of them and nothing else."""
        if self._interrupts == 0 or self._task is None:
            return False
        remaining = 0
        for _ in range(self._interrupts):
            remaining = self._task.uncancel()
        self._interrupts = 0
        return isinstance(exc, asyncio.CancelledError) and remaining == 0

    async def _finish(self, status: Status, *, raising: bool) -> None:
        """The last write of the run: shielded from cancellation and bounded in time."""
        save = asyncio.ensure_future(
            self._persist(status, timeout=SAVE_TIMEOUT, urgent=True, fallback=True)
        )
        # Whoever ends up waiting for it reports its failure; never asyncio's "never retrieved".
        save.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            await asyncio.shield(save)
        except asyncio.CancelledError:
            # Cancelled again while saving: let the save finish, then let the cancellation go.
            await asyncio.wait([save], timeout=SAVE_TIMEOUT)
            if save.done() and not save.cancelled() and save.exception() is not None:
                log.error(  # noqa: TRY400 - the cancellation is what propagates here
                    "job %r: could not write its final state: %s", self.key, save.exception()
                )
            raise
        except ResumableError as exc:
            if raising:
                raise
            log.error(  # noqa: TRY400 - the job's own exception follows with its traceback
                "job %r: could not write its final state (%s); the exception that ended it follows",
                self.key,
                exc,
            )

    async def _park(self) -> None:
        log.info(
            "job %r: saved for migration; waiting for the platform to stop this process",
            self.key,
        )
        await self._unpark.wait()

    def _stop(self) -> None:
        self.stopping = True
        self._attend_at(0)

    def _interrupt(self) -> None:
        """Cancel the work of the job (not our cleanup), so that it stops at its next await."""
        task = self._task
        if task is not None and not task.done() and not self._closing and self._cancellable:
            self._interrupts += 1
            task.cancel()

    def _fail(self, exc: BaseException) -> None:
        """End the run with *exc*, raised where the job's body is."""
        if self._failure is None:
            self._failure = exc
        self._stop()
        self._interrupt()

    def _detach_all(self) -> None:
        while self._detach:
            detach = self._detach.pop()
            try:
                detach()
            except Exception:
                log.exception("job %r: a trigger failed to detach", self.key)

    # -- persistence ----------------------------------------------------------------------

    async def _claim(self) -> None:
        """Load the persisted state and take ownership of the key in one guarded write."""
        for _ in range(_CLAIM_ATTEMPTS):
            data = await self._retry(lambda: self.store.load(self.key), what="Loading")
            record = await self._decode(data) if data is not None else None
            expected = record.seq if record is not None else None
            if record is not None:
                self.cursor = self.persisted = self.resumed_from = record.cursor
                self.resumed = True
                self._seq = record.seq
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
            data = self._codec.encode(
                self.cursor, status="running", seq=self._seq + 1, owner=self._owner
            )

            def guard(current: bytes | None, expected: int | None = expected) -> None:
                seq = None if current is None else parse(current, self.key, self.store)["seq"]
                if seq != expected:
                    raise _ClaimConflictError

            try:
                await self._retry(
                    lambda data=data: self.store.save(self.key, data, guard=guard),  # type: ignore[misc]
                    what="Claiming",
                )
            except _ClaimConflictError:
                continue
            self._seq += 1
            self.saves += 1
            return
        raise StaleWriterError(
            f"Job {self.key!r} could not take ownership of its key in {self.store!r}: other "
            f"runs kept writing it ({_CLAIM_ATTEMPTS} attempts). Make sure only one run of a "
            "key is active at a time."
        )

    async def _decode(self, data: bytes) -> Record[C] | None:
        try:
            return self._codec.decode(data)
        except NewerRecordError:
            raise
        except (CorruptStateError, CursorTypeError) as exc:
            if self._on_corrupt != "quarantine":
                raise
            await self._quarantine(data, exc)
            return None

    async def _quarantine(self, data: bytes, exc: Exception) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        suffix = f".corrupt-{stamp}"
        aside = self.key[: 256 - len(suffix)] + suffix
        await self._retry(lambda: self.store.save(aside, data), what="Quarantining")
        await self._retry(lambda: self.store.delete(self.key), what="Quarantining")
        log.warning(
            "job %r: the stored record was unusable (%s); it was moved to key %r in %r, "
            "and the job starts fresh",
            self.key,
            exc,
            aside,
            self.store,
        )

    async def _write_loop(self) -> None:
        wake = self._wake
        while True:
            if self.interval is None or self.interval is ...:
                await wake.wait()
            else:
                try:
                    async with asyncio.timeout(self.interval):
                        await wake.wait()
                except TimeoutError:
                    pass
            wake.clear()
            try:
                await self._persist("running", timeout=SAVE_TIMEOUT, urgent=False)
            except StoreError as exc:
                if self._urgent == 0:
                    log.warning("job %r: periodic save failed, will try again: %s", self.key, exc)
            except ResumableError as exc:
                if self._closing:
                    return
                if isinstance(exc, CursorTypeError):
                    self.cursor = self.persisted
                self._fail(exc)
                return

    def _changed(self, status: Status) -> bool:
        return self.cursor is not self.persisted or status != self._saved_status

    async def _persist(
        self, status: Status, *, timeout: float, urgent: bool, fallback: bool = False
    ) -> None:
        """Write the latest cursor with *status*, one write at a time, skipping no-op writes."""
        waiting = urgent
        if waiting:
            self._urgent += 1
        try:
            async with self._lock:
                if waiting:
                    self._urgent -= 1
                    waiting = False
                elif self._closing:
                    return
                if not self._changed(status):
                    return
                cursor = self.cursor
                seq = self._seq + 1
                try:
                    data = self._codec.encode(cursor, status=status, seq=seq, owner=self._owner)
                except CursorTypeError:
                    if not fallback:
                        raise
                    cursor = self.cursor = self.persisted
                    data = self._codec.encode(cursor, status=status, seq=seq, owner=self._owner)
                preempted = None if urgent or status != "running" else self._preempted
                await self._retry(
                    lambda: self.store.save(self.key, data, guard=self._guard),
                    what="Saving",
                    timeout=timeout,
                    preempted=preempted,
                )
                self._seq = seq
                self.saves += 1
                self.persisted = cursor
                self._saved_status = status
                log.debug("job %r: saved cursor %r (%s, seq %d)", self.key, cursor, status, seq)
        finally:
            if waiting:
                self._urgent -= 1

    def _preempted(self) -> bool:
        """Stop a routine save's retries when an urgent save is waiting for the lock."""
        return self._urgent > 0

    def _guard(self, current: bytes | None) -> None:
        if current is None:
            raise StaleWriterError(
                f"The record of job {self.key!r} in {self.store!r} was deleted while the job "
                "ran (a reset?). This run stops rather than write it back; start the job again "
                "to begin from scratch."
            )
        envelope = parse(current, self.key, self.store)
        if envelope["owner"] != self._owner:
            raise StaleWriterError(
                f"Job {self.key!r} in {self.store!r} was taken over by another run "
                f"({envelope['owner']}, seq {envelope['seq']}); this run ({self._owner}) stops "
                "without overwriting its progress. Run one instance per key, or give "
                "concurrent runs different keys."
            )

    async def _retry(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        what: str,
        timeout: float = SAVE_TIMEOUT,
        preempted: Callable[[], bool] | None = None,
    ) -> T:
        """Run a store operation, retrying transient failures for up to *timeout* seconds.

        Raises:
            StoreError: It still failed; the last failure is chained.
        """
        stop: tenacity.stop.stop_base = tenacity.stop_before_delay(timeout)
        if preempted is not None:
            stop = stop | _Preempted(preempted)
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=_BACKOFF,
            retry=tenacity.retry_if_not_exception_type((ResumableError, _ClaimConflictError)),
            reraise=True,
        )
        deadline = time.monotonic() + timeout
        try:
            async for attempt in retrying:
                with attempt:
                    # A hung call must not outlive the budget: the last save of a run is
                    # bounded in time, and a migration's budget is the platform's.
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                        return await operation()
        except (ResumableError, _ClaimConflictError):
            raise
        except Exception as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise StoreError(
                f"{what} the state of job {self.key!r} in {self.store!r} failed after "
                f"{attempts} attempt(s): {type(exc).__name__}: {exc}. The previous record is "
                "unchanged; check that the store is reachable and writable."
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


def job(
    key: str,
    cursor: C,
    *,
    cursor_type: Any = None,
    store: Store | None = None,
    every: int | None = None,
    interval: Interval = ...,
    converter: cattrs.Converter | None = None,
    triggers: Iterable[Trigger] | None = None,
    version: int = 1,
    upgrade: Mapping[int, Upgrade] | None = None,
    on_corrupt: OnCorrupt = "raise",
    warn_size: int = 64 * 1024,
    max_size: int = 1024 * 1024,
) -> Job[C]:
    """Make a resumable job to run as ``async with job(key, cursor=default) as j:``.

    On entry, the persisted cursor of *key* (if any) becomes ``j.cursor``; the body calls
    ``j.advance(cursor)`` as work completes; leaving the block persists the latest cursor
    with status ``"completed"`` (or ``"failed"`` when an exception leaves it).

    Args:
        key: Where the state lives (1-256 characters of ``a-zA-Z0-9!-_.'()``).
        cursor: The cursor of a fresh start.
        cursor_type: The cursor's type, when it is not ``type(cursor)`` (required when the
            default is ``None``).
        store: Where to persist; default: the Actor's key-value store inside
            ``async with Actor:``, else ``FileStore(".resumable")``.
        every: Also save every N advances.
        interval: Save every N seconds (``None``: never on a timer). Default: 10 s, or the
            platform's ``persistState`` events inside an Actor.
        converter: A cattrs converter for the cursor type.
        triggers: What else saves or stops the job; default: SIGTERM/SIGINT, plus the
            platform's events inside an Actor.
        version: The cursor's version, stored with it.
        upgrade: ``{old_version: fn}``: raw JSON to raw JSON, applied on load one step at a time.
        on_corrupt: ``"raise"`` or ``"quarantine"`` (move a bad record aside and start fresh).
        warn_size: Warn once when a serialized cursor passes this many bytes.
        max_size: Refuse cursors that serialize to more bytes than this.
    """
    if cursor_type is None:
        if cursor is None:
            raise JobDefinitionError(
                f"job({key!r}, cursor=None) cannot tell the cursor's type: pass cursor_type=, "
                "e.g. cursor_type=int | None"
            )
        cursor_type = type(cursor)
    return Job(
        key,
        cursor=cursor,
        cursor_type=cursor_type,
        store=store,
        every=every,
        interval=interval,
        converter=converter,
        triggers=triggers,
        version=version,
        upgrade=upgrade,
        on_corrupt=on_corrupt,
        warn_size=warn_size,
        max_size=max_size,
    )
