"""`Stops`: how a running job is asked to save, to pause, to migrate and to abort.

These are the job's controls (the `Controls` protocol that triggers see) and what they do:
an urgent save within a budget, the grace the work in flight gets to reach its next yield,
the cut after it, and the end each stop leads to. `Job` is built on it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from resumable._codec import Codec
from resumable._errors import FinishedJobError, ResumableError, StaleWriterError
from resumable._options import JobOptions
from resumable._outbox import Outbox
from resumable._phase import End, Phase
from resumable._record import Outcome, Status
from resumable._stores import Store
from resumable._timing import Timing
from resumable._view import RunView
from resumable._work import Work
from resumable._writer import Writer

C = TypeVar("C")

log = logging.getLogger("resumable")

_NEVER = math.inf
_WARN_AT = 0.8  # of an urgent save's budget: say so loudly if it has not landed by then


class Stops(RunView[C]):
    """The controls of a running job, and the stops they lead to."""

    # Slots: the hot path reads and writes these attributes (of `Job`) once or twice per cursor.
    __slots__ = (
        "__weakref__",
        "_advanced",
        "_checked",
        "_codec",
        "_commit",
        "_copying",
        "_cursor_type",
        "_deadline",
        "_detach",
        "_due",
        "_end",
        "_every",
        "_failure",
        "_home",
        "_hosting",
        "_left",
        "_limit",
        "_marking",
        "_next_every",
        "_open",
        "_options",
        "_outbox",
        "_phase",
        "_snap",
        "_stop_hooks",
        "_stop_saved",
        "_taking",
        "_unpark",
        "_work",
        "_writer",
        "cursor",
        "interval",
        "key",
        "outcome",
        "resumed",
        "resumed_from",
        "stopping",
        "store",
        "yields",
    )

    # The facts of `RunView`, held here: the hot path writes them.
    key: str
    store: Store | None
    cursor: C
    resumed: bool
    resumed_from: C | None
    stopping: bool
    yields: int
    outcome: Outcome[C] | None
    _options: JobOptions
    _phase: Phase
    _end: End | None
    _failure: ResumableError | None
    _due: float
    _limit: int
    _taking: bool
    _copying: bool
    _advanced: bool
    _snap: Any
    _work: Work
    _left: asyncio.Event
    _unpark: asyncio.Event
    _deadline: float | None
    _stop_saved: bool
    _stop_hooks: list[Callable[[], None]]
    _codec: Codec[C]
    _writer: Writer
    _outbox: Outbox[Any]
    _marking: bool
    _home: asyncio.AbstractEventLoop | None

    def _latest(self) -> Any:
        """The snapshot a save writes now: the cursor at the cut, the copy, or the cursor."""
        if self._work.cut:
            return self._work.frozen
        if self._copying or not self._advanced:
            return self._snap
        return self.cursor

    @property
    def saves(self) -> int:
        """Store writes made in this run."""
        return self._writer.saves if self._phase is not Phase.NEW else 0

    @property
    def interruptible(self) -> bool:
        """Whether a stop has done all it can while the process lives (see `Controls`)."""
        return self._stop_saved and (self._work.cut or self._home is not None)

    @property
    def persisted(self) -> C:
        """The cursor of the latest write (the resume point before the first)."""
        if self._phase is Phase.NEW:
            return self.cursor
        return self._codec.restore(self._writer.persisted)

    def refresh(self) -> None:
        """Ask the hot path to bring `yields` up to date at the next cursor."""
        self._attend_at(0.0)

    def pause(self, budget: float | None = None) -> None:
        """Stop taking new work from the next cursor on; returns at once.

        An event source that can act synchronously calls this the moment a migration is
        announced, before the (asynchronous) `migrate` that saves, with the migration's
        *budget* when it knows it: if the work stops before `migrate` runs, the run's last
        save still lands within it.
        """
        if self._end is None:
            self._end = End.MIGRATED
        if budget is not None and self._phase is not Phase.DONE:
            self._narrow_deadline(budget)
        self._stop()

    def _outbox_full(self) -> None:
        """The outbox holds its bound: save soon, and let the writer in at the next cursor."""
        if self._home is not None:  # pushed from a plain generator's thread
            self._home.call_soon_threadsafe(self.request_save)
        else:
            self.request_save()
        self._attend_at(0.0)

    def request_save(self) -> None:
        """Ask the writer to save the latest cursor soon (coalesced); returns at once."""
        if self._phase in (Phase.RUNNING, Phase.STOPPING):
            self._writer.wake()

    async def save(self, *, timeout: float | None = None) -> None:
        """Write the latest cursor now, unless it is already the persisted one, and deliver
        the outputs it covers.

        Raises:
            StoreError: The store still failed after retrying for *timeout* seconds.
            SinkError: The record landed, but the sink still failed; the outputs stay
                pending in the record.
            StaleWriterError: Another run took the key over.
            FinishedJobError: The run has ended.
        """
        if self._phase is Phase.DONE or self._phase is Phase.NEW:
            raise self._unusable("save()")
        deadline = asyncio.get_running_loop().time() + (timeout or self._writer.timing.save)
        await self._writer.urgent(self._latest, "running", deadline)
        await self._writer.deliver(deadline)

    @property
    def timing(self) -> Timing:
        """The run's budgets and backoff (its options' ``timing``, or the default one).

        Raises:
            FinishedJobError: The run has not started.
        """
        if self._phase is Phase.NEW:
            raise self._unusable("timing")
        return self._writer.timing

    @property
    def deadline(self) -> float | None:
        """When a stop set one, the loop time (``loop.time()``) by which its saves must land."""
        return self._deadline

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback* once the run stops taking work (at once if it has); return its undo.

        For work that must be told to stop rather than find out at its next cursor: a
        crawler's own loop, say. The callback runs synchronously, where the stop happens.
        """
        if self.stopping:
            callback()
            return _nothing
        self._stop_hooks.append(callback)

        def remove() -> None:
            if callback in self._stop_hooks:
                self._stop_hooks.remove(callback)

        return remove

    def stop(self, reason: str) -> None:
        """Take no more work and end the run ``"aborted"`` once its block is left.

        For a body that finds out by itself that it was interrupted (a library that
        handled the signal itself): the run ends as a signal would have ended it, its
        latest cursor persisted by the last save, with no grace and no cut.
        """
        if self._phase not in (Phase.RUNNING, Phase.STOPPING) or self._end is not None:
            return
        log.info("job %r: %s; the run ends aborted", self.key, reason)
        self._end = End.ABORTED
        self._stop()

    async def migrate(self, timeout: float | None = None) -> None:
        """Persist at once within *timeout* seconds, then take no new work.

        The run does not end: it waits for the platform to stop the process, and the next
        run resumes from the saved cursor. A failure is logged, not raised: the caller is an
        event handler with nobody to raise to.
        """
        if self._phase is Phase.NEW:
            log.info("job %r: migrating, but the run has not started", self.key)
            return
        budget = timeout if timeout is not None else self._writer.timing.save
        if self._phase not in (Phase.RUNNING, Phase.STOPPING):
            if self._end is End.MIGRATED and self._phase is not Phase.DONE:
                self._narrow_deadline(budget)
                log.info(
                    "job %r: migrating; the work has stopped already, and its last save "
                    "carries cursor %r",
                    self.key,
                    self.cursor,
                )
            else:
                log.info("job %r: migrating, but the run has already ended its work", self.key)
            return
        self.pause(budget)
        log.info("job %r: migrating, saving cursor %r within %.1f s", self.key, self.cursor, budget)
        if await self._urgent("running", budget, "before migration"):
            log.info("job %r: saved %r before migration", self.key, self.persisted)

    async def abort(self, reason: str = "aborted", *, budget: float | None = None) -> None:
        """Persist, stop the work (after its grace) and end the run ``"aborted"``.

        A second abort cuts the work in flight at once. *budget* bounds the saves in
        seconds (default: the run's ``timing.save``).
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
        total = budget if budget is not None else self._writer.timing.save
        deadline = self._narrow_deadline(total)
        log.info("job %r: %s, saving cursor %r and stopping", self.key, reason, self.cursor)
        await self._urgent("aborted", max(0.0, deadline - loop.time()), "on abort")
        self._stop_saved = True
        if self._left.is_set():
            return
        # The work in flight gets its grace to reach its next yield, within half of what
        # the budget has left, so that the last save still fits.
        grace = min(self._options.grace, max(0.0, (deadline - loop.time()) / 2))
        try:
            async with asyncio.timeout(grace):
                await self._left.wait()
        except TimeoutError:
            self._cut(f"the work in flight did not reach its next yield within {grace:.1f} s")

    def _attend_at(self, count: float) -> None:
        """Have the hot path attend once the count of cursors reaches *count*."""
        self._due = count  # compared with the float count of the loops (see `drive`)
        self._limit = int(count) if count < _NEVER else sys.maxsize  # with `advance`'s int

    def _narrow_deadline(self, budget: float) -> float:
        """The run's one deadline: the earliest that a migration, an abort, a signal with a
        known grace or a preemption notice has set; every later save is bounded by it."""
        deadline = asyncio.get_running_loop().time() + budget
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline
        return self._deadline

    def _stop(self) -> None:
        first = not self.stopping
        self.stopping = True
        self._attend_at(0.0)
        if self._phase is Phase.RUNNING:
            self._phase = Phase.STOPPING
        if first:
            hooks, self._stop_hooks = self._stop_hooks, []
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    log.exception("job %r: a callback told of the stop failed", self.key)

    def _cut(self, why: str) -> None:
        """Cancel the work in flight; no cursor it yields afterwards is persisted."""
        if self._phase in (Phase.RUNNING, Phase.STOPPING) and not self._work.cut:
            log.info("job %r: %s; cancelling it", self.key, why)
            self._taking = False
            self._outbox.freeze()
            self._work.cut_now(self._latest())

    def _fail(self, exc: ResumableError) -> None:
        """End the run with *exc* (raised where the job's body is), cutting its work."""
        if self._failure is None:
            self._failure = exc
        self._stop()
        self._cut(f"the run failed: {exc}")

    async def _urgent(self, status: Status, budget: float, what: str) -> bool:
        """A stop's save within *budget*; failures are logged (a fencing one fails the run).

        Only the record: the outputs it holds as pending are delivered after it, in the
        background, so that no sink stands between a stop and its record.
        """
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
            wrote = await self._writer.urgent(self._latest, status, loop.time() + budget)
        except StaleWriterError as exc:
            self._fail(exc)
        except ResumableError as exc:
            log.error("job %r: could not save %s within %.1f s: %s", self.key, what, budget, exc)  # noqa: TRY400
        else:
            self._writer.deliver_later()
            return wrote
        finally:
            warn.cancel()
        return False

    def _unusable(self, what: str) -> FinishedJobError:
        state = "has not started" if self._phase is Phase.NEW else "has ended"
        return FinishedJobError(
            f"{what} on job {self.key!r}, whose run {state}: use a Job inside its "
            "`async with` block, and make a new one for each run."
        )


def _nothing() -> None:
    pass
