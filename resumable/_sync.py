"""`SyncJob`: the engine under a plain ``with``, for work that runs in the calling thread.

A plain generator never awaits, so its job cannot share the caller's event loop: the
engine (the same `Job`, with its writer, timer and triggers) runs on a loop of its own in a
background thread (`resumable._loop_thread`). The work stays in the calling thread, where
the hot path is the engine's own few attribute writes; entering, saving and leaving are
submitted to the loop and waited for. Nothing about persistence is decided here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator, Iterator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from resumable._defaults import surroundings
from resumable._errors import InvalidOptionError, warn
from resumable._loop_thread import LoopBound, LoopThread
from resumable._options import JobOptions
from resumable._outbox import Outbox
from resumable._record import Outcome
from resumable._stores import Store

C = TypeVar("C")
T = TypeVar("T")


class Engine(Protocol[C]):
    """What the plain face needs of the engine (`resumable._engine.Job`)."""

    key: str
    cursor: C
    resumed: bool
    resumed_from: C | None
    stopping: bool
    store: Store | None
    yields: int
    outcome: Outcome[C] | None

    @property
    def saves(self) -> int: ...

    @property
    def out(self) -> Outbox[Any]: ...

    @property
    def persisted(self) -> C: ...

    def advance(self, cursor: C) -> None: ...

    async def save(self, *, timeout: float | None = None) -> None: ...

    def request_save(self) -> None: ...

    def drive_plain(self, cursors: Iterator[C]) -> None: ...

    def session(self, *, scoped: bool, home: asyncio.AbstractEventLoop | None = None) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

    def _unusable(self, what: str) -> Exception: ...

    def __enter__(self) -> SyncJob[C]: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...


class SyncJob(Generic[C]):
    """A run of a job entered with a plain ``with job(...) as j:``.

    The body runs in the calling thread and never waits for the store: ``j.advance(cursor)``
    records the cursor, and the saves happen on an event loop the job owns, in a thread of
    its own. ``j.save()`` is a plain method that waits for the write. A signal or trigger
    sets ``j.stopping``: the body checks it and leaves the block (a thread cannot be
    cancelled; after the grace, cursors it still advances are no longer persisted).

    Attributes:
        key: The key the state lives under.
    """

    def __init__(self, job: Engine[C], options: JobOptions) -> None:
        self.key = job.key
        self._job = job
        self._options = options
        self._thread: LoopThread | None = None

    def __repr__(self) -> str:
        return f"<SyncJob of {self._job!r}>"

    @property
    def cursor(self) -> C:
        """The resume point, then the latest advanced cursor."""
        return self._job.cursor

    @property
    def resumed(self) -> bool:
        """Whether a persisted cursor was found at start."""
        return self._job.resumed

    @property
    def resumed_from(self) -> C | None:
        """The persisted cursor the run started from, or ``None``."""
        return self._job.resumed_from

    @property
    def stopping(self) -> bool:
        """Whether the job should take no new work (a signal, an abort, a migration)."""
        return self._job.stopping

    @property
    def store(self) -> Store | None:
        """Where the state lives."""
        return self._job.store

    @property
    def yields(self) -> int:
        """Cursors advanced in this run."""
        return self._job.yields

    @property
    def out(self) -> Outbox[Any]:
        """The run's outbox: what is pushed into it reaches the sink exactly once."""
        return self._job.out

    @property
    def saves(self) -> int:
        """Store writes made in this run."""
        return self._job.saves

    @property
    def persisted(self) -> C:
        """The cursor of the latest write."""
        return self._job.persisted

    @property
    def outcome(self) -> Outcome[C] | None:
        """How the run ended, once it has."""
        return self._job.outcome

    def advance(self, cursor: C) -> None:
        """Record that everything before *cursor* is done. O(1); never waits for I/O.

        Raises:
            CursorTypeError: The cursor cannot be stored.
            FinishedJobError: The run has ended.
        """
        self._job.advance(cursor)

    def save(self, *, timeout: float | None = None) -> None:
        """Write the latest cursor now (unless it is the persisted one) and wait for it.

        Raises:
            StoreError: The store still failed after retrying for *timeout* seconds.
            StaleWriterError: Another run took the key over.
            FinishedJobError: The run has ended.
        """
        self._call(self._job.save(timeout=timeout))

    def request_save(self) -> None:
        """Ask for a save of the latest cursor soon (coalesced); returns at once."""
        if self._thread is not None:
            self._thread.loop.call_soon_threadsafe(self._job.request_save)

    def drive(self, cursors: Iterator[C]) -> None:
        """Advance through *cursors* until they end or the job stops taking work."""
        self._job.drive_plain(cursors)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._thread is None:
            coroutine.close()
            raise self._job._unusable("save()")  # noqa: SLF001 - the engine's own message
        return self._thread.call(coroutine)

    def __enter__(self) -> SyncJob[C]:
        """Start the job's loop, claim the key and start the run."""
        _refuse_loop_bound(self.key, self._options)
        _warn_in_a_loop(self.key)
        thread = LoopThread(f"resumable:{self.key}")
        thread.start()
        try:
            thread.call(self._job.session(scoped=False, home=thread.loop).__aenter__())
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        self.key = self._job.key
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Persist the latest cursor with the run's last status, then stop the job's loop."""
        thread, self._thread = self._thread, None
        if thread is None:
            return False
        try:
            return thread.call(self._job.__aexit__(exc_type, exc, tb))
        finally:
            thread.stop()


def run_plain(job: Engine[C], start: Callable[[C], Iterator[C]]) -> Outcome[C]:
    """Run a plain generator's job to its end in the calling thread; return its outcome."""
    with job as j:
        generator = start(j.cursor)
        try:
            j.drive(generator)
        finally:
            if isinstance(generator, Generator):
                generator.close()
    assert job.outcome is not None
    return job.outcome


def _refuse_loop_bound(key: str, options: JobOptions) -> None:
    """Raise for a store or trigger that only works on the loop it was made on."""
    where = surroundings(options)
    for part in (where.store, *where.triggers):
        if isinstance(part, LoopBound) and part.loop_bound:
            raise InvalidOptionError(
                f"job {key!r} is a plain generator, but {part!r} only works on the Actor's "
                "event loop, which a plain generator's job cannot use (its saves run on a loop "
                "of its own). Write the job as an `async def` generator inside "
                "`async with Actor:`, or give it a store and triggers of its own (e.g. "
                "store=FileStore(...), triggers=[Signals()])."
            )


def _warn_in_a_loop(key: str) -> None:
    """Say so when a plain generator's job is about to block a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    warn(
        f"job {key!r} is a plain generator's job, run from inside a running event loop (from "
        "async code): it runs to its end in this thread and blocks the loop until then, with "
        "everything else the loop would do. Run it in a thread of its own (`await "
        "asyncio.to_thread(fn, ...)`), or write the job as an `async def` generator."
    )
