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
from typing import Any, Protocol, runtime_checkable

from resumable._controls import Controls
from resumable._loop_thread import in_caller
from resumable._signal_hub import hub, name

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


@runtime_checkable
class DrivesPeriodicSaves(Protocol):
    """A trigger whose events ask for the periodic saves (the platform's ``persistState``).

    When a job's triggers include one whose `drives_periodic_saves` is true and the job
    leaves ``interval`` at its default, the engine runs no timer of its own.
    """

    @property
    def drives_periodic_saves(self) -> bool:
        """Whether its events take the place of the engine's save timer."""
        ...


class Signals:
    """Abort the job on SIGTERM and SIGINT: persist, stop its work, end ``"aborted"``.

    Only in the main thread (the only place Python delivers signals); elsewhere it does
    nothing. A second signal cuts the work in flight at once. Once the abort has saved, and
    the work, cut, is still stuck (or runs in a plain generator's thread, which nothing
    cuts), a further one goes to the handler that was installed before, so a stuck shutdown
    can still be interrupted; a run closing normally, through its ``finally`` and its last
    save, never is. While the job runs, a handler installed for the signals meanwhile (with
    `signal.signal`, or ``add_signal_handler`` on the job's loop, as Crawlee's
    ``crawler.run()`` does) waits until no job listens: the signal still stops the job.

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
        return f"Signals({', '.join(name(s) for s in self.signals)})"

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

        # A job in the main thread runs its code on this loop, which may add callbacks for
        # the signals to it (Crawlee's crawler.run does).
        watch_loop = relay is _directly

        def add() -> None:
            for signum in self.signals:
                hub.add(signum, loop, controls, budget, watch_loop=watch_loop)

        def remove() -> None:
            for signum in self.signals:
                hub.remove(signum, controls)

        relay(add)
        return lambda: relay(remove)


def _directly(function: Callable[[], Any]) -> Any:
    return function()


def _nothing() -> None:
    pass
