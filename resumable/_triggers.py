"""Triggers: what tells a running job to save, to stop pulling work, or to abort.

A trigger is any object with ``attach(controls) -> detach``. ``attach`` runs inside the
job's event loop when the job starts; it hooks the trigger's event source to the job's
`Controls` (``request_save``, ``pause``, ``migrate``, ``abort``) and returns a callable that
unhooks it when the job ends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from resumable._controls import Controls
from resumable._loop_thread import in_caller

log = logging.getLogger("resumable")

Detach = Callable[[], None]

GRACE_ENV = "RESUMABLE_TERMINATION_GRACE"
"""Seconds between SIGTERM and the SIGKILL that follows it, when the platform says (e.g. a
Kubernetes pod's ``terminationGracePeriodSeconds``); the abort's save is budgeted within it."""

_MARGIN = 1.0  # seconds kept back from a known grace, for the process to exit


@runtime_checkable
class Trigger(Protocol):
    """Something that drives a job's saves and stops from outside the job."""

    def attach(self, controls: Controls, /) -> Detach:
        """Start watching for the job behind *controls*; return what stops watching."""
        ...


_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class _SignalHub:
    """One process-wide handler per signal that fans out to every job listening for it.

    The first signal aborts every listening job; a second one cuts the work in flight at
    once, a generator's ``finally`` included (the jobs still end ``aborted``, their saves
    made). A further signal goes to the handler that was installed before only once every
    job still listening is `interruptible`: its abort has saved, and its work has been cut
    and is stuck, or runs in a plain generator's thread, which no cut stops. So a stuck
    shutdown can still be interrupted, and a run closing normally, through its ``finally``
    and its last save, never is. Jobs come and go in any order; when the last one leaves,
    the previous handler is put back, unless someone else installed theirs in the meantime:
    that one stays.
    """

    def __init__(self) -> None:
        self._listeners: dict[int, list[tuple[asyncio.AbstractEventLoop, Controls, float]]] = {}
        self._previous: dict[int, _SignalHandler] = {}
        self._received = 0

    def add(
        self, signum: int, loop: asyncio.AbstractEventLoop, job: Controls, budget: float
    ) -> None:
        listeners = self._listeners.setdefault(signum, [])
        if not listeners:
            self._previous[signum] = signal.signal(signum, self._handle)
        listeners.append((loop, job, budget))

    def remove(self, signum: int, job: Controls) -> None:
        listeners = self._listeners.get(signum, [])
        listeners[:] = [entry for entry in listeners if entry[1] is not job]
        if not listeners and signum in self._previous:
            previous = self._previous.pop(signum)
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        if not any(self._listeners.values()):
            self._received = 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._received += 1
        if self._received > 1 and all(
            job.interruptible for entries in self._listeners.values() for _, job, _ in entries
        ):
            self._escalate(signum)
            return
        reason = f"received {_name(signum)}"
        for loop, job, budget in self._listeners.get(signum, []):
            loop.call_soon_threadsafe(_spawn, job, reason, _budget(budget))

    def _escalate(self, signum: int) -> None:
        """Every stop has done what it can: the previous handler decides."""
        for sig in list(self._listeners):
            self._listeners[sig].clear()
            previous = self._previous.pop(sig)
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, previous)
        self._received = 0
        signal.raise_signal(signum)


_background: set[asyncio.Task[None]] = set()


def _spawn(job: Controls, reason: str, budget: float | None) -> None:
    task = asyncio.ensure_future(job.abort(reason, budget=budget))
    _background.add(task)
    task.add_done_callback(_background.discard)


def _budget(budget: float) -> float | None:
    return None if math.isinf(budget) else budget


def _name(signum: int) -> str:
    return signal.Signals(signum).name


_hub = _SignalHub()


class Signals:
    """Abort the job on SIGTERM and SIGINT: persist, stop its work, end ``"aborted"``.

    Only in the main thread (the only place Python delivers signals); elsewhere it does
    nothing. A second signal cuts the work in flight at once. Once the abort has saved, and
    the work, cut, is still stuck (or runs in a plain generator's thread, which nothing
    cuts), a further one goes to the handler that was installed before, so a stuck shutdown
    can still be interrupted; a run closing normally, through its ``finally`` and its last
    save, never is.

    Args:
        signals: Which signals abort the job.
        grace: Seconds between the signal and the SIGKILL that follows it, when known (a
            Kubernetes pod's ``terminationGracePeriodSeconds``): the abort's saves are
            budgeted within it. Default: the environment variable
            ``RESUMABLE_TERMINATION_GRACE``, else the usual save budget.
    """

    def __init__(
        self,
        signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
        *,
        grace: float | None = None,
    ) -> None:
        self.signals = tuple(signals)
        self.grace = grace

    def __repr__(self) -> str:
        return f"Signals({', '.join(_name(s) for s in self.signals)})"

    def budget(self) -> float:
        """Seconds an abort on a signal may spend saving (``inf``: the usual budget)."""
        grace = self.grace
        if grace is None:
            raw = os.environ.get(GRACE_ENV, "")
            try:
                grace = float(raw) if raw else None
            except ValueError:
                log.warning("%s=%r is not a number of seconds; ignoring it", GRACE_ENV, raw)
        if grace is None or not math.isfinite(grace) or grace <= 0:
            return math.inf
        return max(grace - _MARGIN, grace / 2)

    def attach(self, controls: Controls) -> Detach:
        """Route the signals to the job behind *controls* until the returned callable is called."""
        # A plain generator's job runs its engine on a loop of its own, in another thread:
        # when the generator runs in the main thread, the handlers are installed there.
        relay = in_caller()
        if threading.current_thread() is threading.main_thread():
            relay = _directly
        elif relay is None:
            log.debug("job %r runs outside the main thread: signals are not watched", controls.key)
            return _nothing
        loop = asyncio.get_running_loop()
        budget = self.budget()

        def add() -> None:
            for signum in self.signals:
                _hub.add(signum, loop, controls, budget)

        def remove() -> None:
            for signum in self.signals:
                _hub.remove(signum, controls)

        relay(add)
        return lambda: relay(remove)


def _directly(function: Callable[[], Any]) -> Any:
    return function()


def _nothing() -> None:
    pass
