"""An event loop in a thread of its own, for a job whose work runs in a plain thread.

A plain generator runs in the calling thread and never awaits, so the engine (writer,
timer, triggers) runs on a loop that the job owns, in a background thread. One task on that
loop holds the run (`Held`: it enters, waits for the block to end, and exits); the calling
thread waits for the entry, for a save, and for the exit. While it waits, it runs what the
loop needs done in the calling thread (installing signal handlers is only allowed in the
main thread): see `in_caller`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

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
        task = self.submit(coroutine)
        return self.wait(task, task)

    def hold(self, manager: AbstractAsyncContextManager[T]) -> Held[T]:
        """Return a plain context manager that enters and exits *manager* on the loop.

        Both happen in one task on the loop (anyio's blocking portal wraps an async
        context manager so): it enters *manager*, hands its value to the calling thread,
        waits until that thread leaves its block, and exits *manager* with what left it.
        """
        return Held(self, manager)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start *coroutine* on the loop; the calling thread `wait`s next, and may be relayed
        calls from now on."""
        self._pumping = True
        relay = self._relay if threading.current_thread() is threading.main_thread() else None
        return asyncio.run_coroutine_threadsafe(_relaying(coroutine, relay), self.loop)

    def nudge(self, callback: Callable[[], Any]) -> None:
        """Have the loop call *callback*; the calling thread `wait`s next, as after `submit`."""
        self._pumping = True
        self.loop.call_soon_threadsafe(callback)

    def wait(self, future: concurrent.futures.Future[T], task: concurrent.futures.Future[Any]) -> T:
        """Wait for *future* in the calling thread, running what the loop relays meanwhile.

        An exception while waiting cancels *task* (the one that would set *future*).
        """
        future.add_done_callback(lambda _: self._inbox.put(None))
        try:
            self._pump()
        except BaseException:
            task.cancel()
            self._pump()
            raise
        finally:
            self._pumping = False
        return future.result()

    def _pump(self) -> None:
        while (task := self._inbox.get()) is not None:
            task()

    def _relay(self, function: Callable[[], T]) -> T:
        """Run *function* in the calling thread, which waits in `wait`; return its result."""
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


class Held(Generic[T]):
    """An async context manager held by one task on a `LoopThread`, used with a plain ``with``."""

    def __init__(self, thread: LoopThread, manager: AbstractAsyncContextManager[T]) -> None:
        self._thread = thread
        self._manager = manager
        self._entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._left: asyncio.Event | None = None
        self._how: tuple[Any, ...] = (None, None, None)
        self._task: concurrent.futures.Future[bool | None] | None = None

    def __enter__(self) -> T:
        self._task = task = self._thread.submit(self._hold())
        task.add_done_callback(self._never_entered)
        return self._thread.wait(self._entered, task)

    def _never_entered(self, task: concurrent.futures.Future[Any]) -> None:
        """The task ended before it entered (cancelled before it ran): say so to the waiter."""
        if not self._entered.done():
            error = task.exception() if not task.cancelled() else None
            self._entered.set_exception(error or concurrent.futures.CancelledError())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task, self._task = self._task, None
        if task is None or self._left is None:
            return False
        self._how = (exc_type, exc, tb)
        self._thread.nudge(self._left.set)
        return bool(self._thread.wait(task, task))

    async def _hold(self) -> bool | None:
        left = asyncio.Event()
        try:
            value = await self._manager.__aenter__()
        except BaseException as exc:
            self._entered.set_exception(exc)
            raise
        self._left = left
        self._entered.set_result(value)
        await left.wait()
        return await self._manager.__aexit__(*self._how)


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
