"""An event loop in a thread of its own, for a job whose work runs in a plain thread.

A plain generator runs in the calling thread and never awaits, so the engine (writer,
timer, triggers) runs on a loop that the job owns, in a background thread. The calling thread
submits the run's few lifecycle calls (enter, save, exit) and waits for each; while it waits,
it runs what the loop needs done in the calling thread (installing signal handlers is only
allowed in the main thread): see `in_caller`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

_Relay = Callable[[Callable[[], Any]], Any]

_caller: contextvars.ContextVar[_Relay | None] = contextvars.ContextVar(
    "resumable_caller", default=None
)


def in_caller() -> _Relay | None:
    """How to run a call in the main thread that is waiting for this coroutine, if any.

    ``None`` unless the running coroutine was submitted by `LoopThread.call` from the main
    thread. The relay blocks the loop until the main thread has run the call.
    """
    return _caller.get()


@runtime_checkable
class LoopBound(Protocol):
    """A store or trigger that works only on the event loop it was made on (the Actor's).

    A plain generator's job runs its engine on a loop of its own, in a thread: it refuses a
    part whose `loop_bound` is true, with an error that says what to use instead.
    """

    @property
    def loop_bound(self) -> bool:
        """Whether it works only on the loop it was made on."""
        ...


class LoopThread:
    """An event loop running in a daemon thread until `stop`.

    Attributes:
        loop: The loop (set once `start` returns).
    """

    def __init__(self, name: str) -> None:
        self.loop: asyncio.AbstractEventLoop
        self._name = name
        self._ready = threading.Event()
        self._done: asyncio.Event
        self._inbox: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._pumping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread and wait until its loop runs."""
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        """Stop the loop (what is still pending is cancelled, as `asyncio.run` does) and join."""
        self.loop.call_soon_threadsafe(self._done.set)
        self._thread.join()

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._ready.set()
        await self._done.wait()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run *coroutine* on the loop and return its result, from the calling thread.

        While waiting, the calling thread runs the calls the loop relays to it. An exception
        in the calling thread while waiting (a ``KeyboardInterrupt``) cancels the coroutine,
        waits for it to end, and propagates.
        """
        relay = self._relay if threading.current_thread() is threading.main_thread() else None
        self._pumping = True
        future = asyncio.run_coroutine_threadsafe(_relaying(coroutine, relay), self.loop)
        future.add_done_callback(lambda _: self._inbox.put(None))
        try:
            self._pump()
        except BaseException:
            future.cancel()
            self._pump()
            raise
        finally:
            self._pumping = False
        return future.result()

    def _pump(self) -> None:
        while (task := self._inbox.get()) is not None:
            task()

    def _relay(self, function: Callable[[], T]) -> T:
        """Run *function* in the calling thread, which waits in `call`; return its result."""
        if not self._pumping:
            raise RuntimeError(f"{self._name}: the calling thread is not waiting for the loop")
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(function())
            except BaseException as exc:  # noqa: BLE001 - handed back to the loop's thread
                done.set_exception(exc)

        self._inbox.put(run)
        return done.result()


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run *coroutine* to its end on a loop of its own, from any thread, loop or not."""
    thread = LoopThread("resumable")
    thread.start()
    try:
        return thread.call(coroutine)
    finally:
        thread.stop()


async def _relaying(coroutine: Coroutine[Any, Any, T], relay: _Relay | None) -> T:
    _caller.set(relay)
    return await coroutine
