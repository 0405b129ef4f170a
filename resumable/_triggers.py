"""Triggers: what tells a running job to save, to stop pulling work, or to abort.

A trigger is any object with ``attach(job) -> detach``. ``attach`` runs inside the job's
event loop when the job starts; it hooks the trigger's event source to the job's controls
(`Job.request_save`, `Job.save`, `Job.migrate`, `Job.abort`) and returns a callable that
unhooks it when the job ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from resumable._engine import Job

log = logging.getLogger("resumable")

Detach = Callable[[], None]


@runtime_checkable
class Trigger(Protocol):
    """Something that drives a job's saves and stops from outside the job."""

    def attach(self, job: Job[Any]) -> Detach:
        """Start watching for *job*; return what stops watching."""
        ...


_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class _SignalHub:
    """One process-wide handler per signal that fans out to every job listening for it.

    Jobs come and go in any order; the handler that was there before the first job is put
    back when the last one leaves.
    """

    def __init__(self) -> None:
        self._listeners: dict[int, list[tuple[asyncio.AbstractEventLoop, Job[Any]]]] = {}
        self._previous: dict[int, _SignalHandler] = {}

    def add(self, signum: int, loop: asyncio.AbstractEventLoop, job: Job[Any]) -> None:
        listeners = self._listeners.setdefault(signum, [])
        if not listeners:
            self._previous[signum] = signal.signal(signum, self._handle)
        listeners.append((loop, job))

    def remove(self, signum: int, job: Job[Any]) -> None:
        listeners = self._listeners.get(signum, [])
        listeners[:] = [(loop, j) for loop, j in listeners if j is not job]
        if not listeners and signum in self._previous:
            signal.signal(signum, self._previous.pop(signum))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        listeners = list(self._listeners.get(signum, []))
        if all(job.stopping and job.aborting for _, job in listeners):
            self._escalate(signum)
            return
        name = signal.Signals(signum).name
        for loop, job in listeners:
            loop.call_soon_threadsafe(_spawn, job, name)

    def _escalate(self, signum: int) -> None:
        """A second signal while every job is aborting already: the previous handler decides."""
        for sig in list(self._listeners):
            self._listeners[sig].clear()
            signal.signal(sig, self._previous.pop(sig))
        signal.raise_signal(signum)


_background: set[asyncio.Task[None]] = set()


def _spawn(job: Job[Any], name: str) -> None:
    task = asyncio.ensure_future(job.abort(f"received {name}"))
    _background.add(task)
    task.add_done_callback(_background.discard)


_hub = _SignalHub()


class Signals:
    """Abort the job on SIGTERM and SIGINT: persist, close the generator, end ``"aborted"``.

    Only in the main thread (the only place Python delivers signals); elsewhere it does
    nothing. A second signal while the job is already aborting goes to the handler that was
    installed before, so a second Ctrl-C still interrupts a stuck shutdown.

    Args:
        signals: Which signals abort the job.
    """

    def __init__(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = tuple(signals)

    def __repr__(self) -> str:
        return f"Signals({', '.join(signal.Signals(s).name for s in self.signals)})"

    def attach(self, job: Job[Any]) -> Detach:
        """Route the signals to *job* until the returned callable is called."""
        if threading.current_thread() is not threading.main_thread():
            log.debug("job %r runs outside the main thread: signals are not watched", job.key)
            return _nothing
        loop = asyncio.get_running_loop()
        for signum in self.signals:
            _hub.add(signum, loop, job)

        def detach() -> None:
            for signum in self.signals:
                _hub.remove(signum, job)

        return detach


def _nothing() -> None:
    pass
