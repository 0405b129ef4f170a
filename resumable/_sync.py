"""`SyncJob`: the engine under a plain ``with``, for work that runs in the calling thread.

A plain generator never awaits, so its job cannot share the caller's event loop: the
engine (the same `Job`, with its writer, timer and triggers) runs on a loop of its own in a
background thread (`resumable._loop_thread`). The work stays in the calling thread, where
the hot path is the engine's own few attribute writes. One task on that loop enters the run,
waits while the block runs and leaves it (`LoopThread.hold`); a save is submitted to the loop
and waited for. Nothing about persistence is decided here: the engine hands this face the
values it uses (its view, its methods), and this module knows nothing of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

from resumable._defaults import surroundings
from resumable._errors import InvalidOptionError, warn
from resumable._loop_thread import LoopBound, LoopThread, run_in_thread
from resumable._options import JobOptions
from resumable._record import Outcome
from resumable._view import RunView

C = TypeVar("C")


class SyncJob(RunView[C]):
    """A run of a job entered with a plain ``with job(...) as j:``.

    The body runs in the calling thread and never waits for the store: ``j.advance(cursor)``
    records the cursor, and the saves happen on an event loop the job owns, in a thread of
    its own. ``j.save()`` is a plain method that waits for the write. A signal or trigger
    sets ``j.stopping``: the body checks it and leaves the block (a thread cannot be
    cancelled; after the grace, cursors it still advances are no longer persisted). What it
    shows of the run (``key``, ``cursor``, ``stopping``, ...) is `RunView`'s, read through to
    the engine.

    Attributes:
        advance: Record that everything before a cursor is done (`Job.advance` itself:
            O(1), never waits for I/O).
        drive: Advance through an iterator of cursors until it ends or the job stops
            taking work.
    """

    __slots__ = (
        "_async_save",
        "_held",
        "_hosted",
        "_options",
        "_request_save",
        "_run",
        "_thread",
        "advance",
        "drive",
    )

    def __init__(
        self,
        run: RunView[C],
        hosted: Callable[[asyncio.AbstractEventLoop], AbstractAsyncContextManager[Any]],
        options: JobOptions,
        *,
        advance: Callable[[C], None],
        drive: Callable[[Iterator[C]], None],
        save: Callable[..., Coroutine[Any, Any, None]],
        request_save: Callable[[], None],
    ) -> None:
        self._run = run
        self._hosted = hosted
        self._options = options
        # The engine's own methods, not wrappers: one call per cursor, as under `async with`.
        self.advance = advance
        self.drive = drive
        self._async_save = save
        self._request_save = request_save
        self._thread: LoopThread | None = None
        self._held: AbstractContextManager[Any] | None = None

    def __repr__(self) -> str:
        return f"<SyncJob of {self._run!r}>"

    def save(self, *, timeout: float | None = None) -> None:
        """Write the latest cursor now (unless it is the persisted one) and wait for it.

        Raises:
            StoreError: The store still failed after retrying for *timeout* seconds.
            StaleWriterError: Another run took the key over.
            FinishedJobError: The run has not started or has ended.
        """
        save = self._async_save(timeout=timeout)
        if self._thread is None:  # outside the block: the engine says why it cannot save
            run_in_thread(save)
        else:
            self._thread.call(save)

    def request_save(self) -> None:
        """Ask for a save of the latest cursor soon (coalesced); returns at once."""
        if self._thread is not None:
            self._thread.loop.call_soon_threadsafe(self._request_save)

    def __enter__(self) -> SyncJob[C]:
        """Start the job's loop, claim the key and start the run."""
        _refuse_loop_bound(self.key, self._options)
        _warn_in_a_loop(self.key)
        thread = LoopThread(f"resumable:{self.key}")
        thread.start()
        held = thread.hold(self._hosted(thread.loop))
        try:
            held.__enter__()
        except BaseException:
            thread.stop()
            raise
        self._thread, self._held = thread, held
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Persist the latest cursor with the run's last status, then stop the job's loop."""
        thread, held = self._thread, self._held
        self._thread = self._held = None
        if thread is None or held is None:
            return False
        try:
            return bool(held.__exit__(exc_type, exc, tb))
        finally:
            thread.stop()


def run_plain(
    job: AbstractContextManager[SyncJob[C]], start: Callable[[C], Iterator[C]]
) -> Outcome[C]:
    """Run a plain generator's job to its end in the calling thread; return its outcome."""
    with job as j:
        generator = start(j.cursor)
        try:
            j.drive(generator)
        finally:
            if isinstance(generator, Generator):
                generator.close()
    assert j.outcome is not None
    return j.outcome


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
