"""The signal hub: while jobs listen for a signal, the process's handler for it is theirs.

Python keeps one handler per signal for the whole process (`signal.signal`), and an asyncio
loop keeps one callback per signal of its own (``loop.add_signal_handler``, which sets the
process's handler to a no-op and has the loop call the callback). Either can be replaced at
any moment by code the job runs: Crawlee's ``crawler.run()`` adds a SIGINT callback to the
loop that cancels its crawl and returns as if the crawl were done, and removing it resets
SIGINT to Python's default handler. A job whose signal went to such a handler would count
half-done work as done, and one whose handler was reset would not hear the next signal.

So while at least one job listens for a signal, the hub holds it. Its handler stays the
process's, and a handler installed for that signal meanwhile waits: ``signal.signal`` and
``signal.getsignal`` are routed through the hub, and so are the ``add_signal_handler`` and
``remove_signal_handler`` of the loops that jobs run on in the main thread. What was
installed meanwhile is reported by ``getsignal``, can be removed, and takes over when no job
listens for the signal any more; a loop callback added and removed meanwhile leaves no trace.
Only the loops of jobs are watched: a loop started inside a plain generator's job that adds a
callback for a held signal still gets the signal too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from resumable._controls import Controls

log = logging.getLogger("resumable")

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
"""What `signal.signal` takes and `signal.getsignal` returns."""

_UNSET: Any = object()
"""Nothing was installed for the signal since the hub took it."""

_ON_LOOP: Any = object()
"""The latest handler installed for the signal is a loop's callback, waiting in a `_LoopHold`."""


class _Held:
    """One signal the hub holds: who listens, what it replaced, what was installed since."""

    __slots__ = ("installed", "listeners", "previous")

    def __init__(self, previous: Handler) -> None:
        self.previous = previous
        self.installed: Any = _UNSET
        self.listeners: list[tuple[asyncio.AbstractEventLoop, Controls, float]] = []


class _LoopHold:
    """A job loop's ``add_signal_handler`` and ``remove_signal_handler``, routed to the hub."""

    def __init__(self, hub: SignalHub, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = hub
        self.loop = loop
        self.waiting: dict[int, tuple[Callable[..., object], tuple[Any, ...]]] = {}
        self._add = loop.add_signal_handler
        self._remove = loop.remove_signal_handler
        loop.add_signal_handler = self.add_signal_handler  # type: ignore[method-assign,assignment]
        loop.remove_signal_handler = self.remove_signal_handler  # type: ignore[method-assign]

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:
        """The loop's own, unless a job holds *sig*: then *callback* waits for its turn."""
        held = self.hub.held(sig)
        if held is None:
            self._add(sig, callback, *args)
            return
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self.waiting[sig] = (callback, args)
        held.installed = _ON_LOOP

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove a waiting callback for *sig*, or the loop's own one."""
        if sig not in self.waiting:
            return self._remove(sig)
        del self.waiting[sig]
        held = self.hub.held(sig)
        if held is not None and held.installed is _ON_LOOP:
            held.installed = _UNSET
        return True

    def replay(self, sig: int) -> None:
        """Add the callback that waited for *sig* to the loop, now that no job holds it."""
        waiting = self.waiting.pop(sig, None)
        if waiting is None:
            return
        callback, args = waiting
        try:
            self._add(sig, callback, *args)
        except RuntimeError as exc:  # the loop was closed meanwhile
            log.debug("the signal handler %r that waited for %s is dropped: %s", callback, sig, exc)

    def release(self) -> None:
        """Give the loop its own methods back."""
        for name, ours in (
            ("add_signal_handler", self.add_signal_handler),
            ("remove_signal_handler", self.remove_signal_handler),
        ):
            if vars(self.loop).get(name) == ours:
                delattr(self.loop, name)


class SignalHub:
    """One process-wide handler per signal that fans out to every job listening for it.

    The first signal aborts every listening job; a second one cuts the work in flight at
    once, a generator's ``finally`` included (the jobs still end ``aborted``, their saves
    made). A further signal goes to the handler that was installed before (or meanwhile)
    only once every job still listening is ``interruptible``: its abort has saved, and its
    work has been cut and is stuck, or runs in a plain generator's thread, which no cut
    stops. So a stuck shutdown can still be interrupted, and a run closing normally,
    through its ``finally`` and its last save, never is. Jobs come and go in any order;
    when the last one listening for a signal leaves, the handler installed meanwhile, or
    else the one from before, is put back.
    """

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}
        self._loops: dict[asyncio.AbstractEventLoop, _LoopHold] = {}
        self._received = 0
        self._handler = self._handle  # one bound method, so `getsignal` gives the same object
        self._real_signal = signal.signal
        self._real_getsignal = signal.getsignal

    def held(self, signum: int) -> _Held | None:
        """The hold on *signum*, while a job listens for it."""
        return self._held.get(signum)

    def add(
        self,
        signum: int,
        loop: asyncio.AbstractEventLoop,
        job: Controls,
        budget: float,
        *,
        watch_loop: bool,
    ) -> None:
        """Route *signum* to *job* (on *loop*) until `remove`; in the main thread only.

        *watch_loop*: *loop* runs in the main thread, where the job's code may add its own
        callbacks for the signal to it.
        """
        if not self._held:
            self._real_signal, self._real_getsignal = signal.signal, signal.getsignal
            signal.signal, signal.getsignal = self._signal, self._getsignal  # type: ignore[assignment]
        held = self._held.get(signum)
        if held is None:
            held = self._held[signum] = _Held(self._real_signal(signum, self._handler))
        if watch_loop and loop not in self._loops:
            self._loops[loop] = _LoopHold(self, loop)
        held.listeners.append((loop, job, budget))

    def remove(self, signum: int, job: Controls) -> None:
        """Stop routing *signum* to *job*; give the signal back once nobody listens."""
        held = self._held.get(signum)
        if held is None:
            return
        held.listeners[:] = [entry for entry in held.listeners if entry[1] is not job]
        if not held.listeners:
            self._release(signum)
        if not self._held:
            self._idle()

    def _release(self, signum: int) -> None:
        """Install what was installed for *signum* meanwhile, or what was there before."""
        held = self._held.pop(signum)
        for hold in self._loops.values():
            hold.replay(signum)
        if held.installed is _ON_LOOP:
            return  # the replayed loop callback has set the process's handler
        handler = held.previous if held.installed is _UNSET else held.installed
        if self._real_getsignal(signum) == self._handler:
            self._real_signal(signum, handler)

    def _idle(self) -> None:
        """No job listens for any signal: the signal module and the loops are their own."""
        for hold in self._loops.values():
            hold.release()
        self._loops.clear()
        if signal.signal == self._signal:
            signal.signal = self._real_signal
        if signal.getsignal == self._getsignal:
            signal.getsignal = self._real_getsignal
        self._received = 0

    # -- the signal module, while the hub holds signals -------------------------------------

    def _signal(self, signum: int | signal.Signals, handler: Handler, /) -> Handler:
        """`signal.signal`, except that a handler for a held signal waits for its turn."""
        held = self._held.get(signum)
        if held is None or threading.current_thread() is not threading.main_thread():
            return self._real_signal(signum, handler)
        if not callable(handler) and handler not in (signal.SIG_DFL, signal.SIG_IGN):
            raise TypeError(
                "signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object"
            )
        before = self._getsignal(signum)
        held.installed = _UNSET if handler == self._handler else handler
        return before

    def _getsignal(self, signum: int | signal.Signals, /) -> Handler:
        """`signal.getsignal`: for a held signal, the handler installed meanwhile, if any."""
        held = self._held.get(signum)
        if held is None:
            return self._real_getsignal(signum)
        if held.installed is _UNSET or held.installed is _ON_LOOP:
            return self._handler
        return held.installed  # type: ignore[no-any-return]

    # -- receiving --------------------------------------------------------------------------

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        held = self._held.get(signum)
        if held is None:
            # Installed again by someone who kept it after the jobs left: act as the default.
            self._real_signal(
                signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            )
            signal.raise_signal(signum)
            return
        self._received += 1
        if self._received > 1 and all(
            job.interruptible for each in self._held.values() for _, job, _ in each.listeners
        ):
            self._escalate(signum)
            return
        reason = f"received {name(signum)}"
        for loop, job, budget in held.listeners:
            loop.call_soon_threadsafe(_spawn, job, reason, _budget(budget))

    def _escalate(self, signum: int) -> None:
        """Every stop has done what it can: the handler from before (or meanwhile) decides."""
        for sig in list(self._held):
            self._release(sig)
        self._idle()
        signal.raise_signal(signum)


_background: set[asyncio.Task[None]] = set()


def _spawn(job: Controls, reason: str, budget: float | None) -> None:
    task = asyncio.ensure_future(job.abort(reason, budget=budget))
    _background.add(task)
    task.add_done_callback(_background.discard)


def _budget(budget: float) -> float | None:
    return None if math.isinf(budget) else budget


def name(signum: int) -> str:
    """The signal's name, as people know it (``SIGTERM``)."""
    return signal.Signals(signum).name


hub = SignalHub()
"""The process's hub (signals are process-wide)."""
