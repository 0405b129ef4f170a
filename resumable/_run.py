"""`Run`: one call of a decorated job, awaited to its end or watched cursor by cursor."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Generator
from typing import Any, TypeVar

from resumable._declared import Declared
from resumable._engine import Job
from resumable._errors import ResumableWarning
from resumable._record import Outcome

C = TypeVar("C")


log = logging.getLogger("resumable")


class Run(Coroutine[Any, Any, Outcome[C]]):
    """One run of a resumable job: await it for its `Outcome`, or iterate it to watch.

    ``await run`` (or ``asyncio.run(run)``: a run is a coroutine) drives the job to its
    end. ``async for cursor in run`` drives the same checkpointed loop and hands over each
    cursor once the engine has recorded it; the `Outcome` is then in ``run.outcome``. A
    watcher that leaves the loop early ends the run with ``await run.aclose()``: the latest
    handed-over cursor is persisted and the run ends ``"aborted"``. A run can be started once.
    """

    def __init__(
        self,
        function: Declared[Any, C, AsyncGenerator[C, None]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._started = False
        self._coroutine: Coroutine[Any, Any, Outcome[C]] | None = None
        self._iterator: AsyncGenerator[C, None] | None = None
        self._left_early = False
        self.outcome: Outcome[C] | None = None
        """How the run ended, once it has."""

    def __repr__(self) -> str:
        return f"<Run of {self._function.__qualname__} outcome={self.outcome!r}>"

    def __del__(self) -> None:
        if not self._started:
            # Not a ResourceWarning, which Python hides by default: a job that silently
            # never ran is a mistake to see.
            warnings.warn(
                f"a run of {self._function.__qualname__} was never awaited nor iterated, so "
                f"the job never ran: `await {self._function.__qualname__}(...)` (or "
                f"`asyncio.run({self._function.__qualname__}(...))` outside async code)",
                ResumableWarning,
                stacklevel=1,
            )

    # -- the coroutine protocol -----------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Outcome[C]]:
        return self._driver().__await__()

    def send(self, value: Any, /) -> Any:
        """Drive the run one step (the coroutine protocol, for ``asyncio.run``)."""
        return self._driver().send(value)

    def throw(self, error: Any, value: Any = None, traceback: Any = None, /) -> Any:
        """Raise *error* inside the run (the coroutine protocol)."""
        if value is None and traceback is None:
            return self._driver().throw(error)
        return self._driver().throw(error, value, traceback)

    def close(self) -> None:
        """Close the run's coroutine, if it was started."""
        if self._coroutine is not None:
            self._coroutine.close()

    def _driver(self) -> Coroutine[Any, Any, Outcome[C]]:
        if self._coroutine is None:
            self._coroutine = self._run()
        return self._coroutine

    # -- watching -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[C]:
        self._iterator = self._watch()
        return self._iterator

    async def aclose(self) -> None:
        """End a watched run early: persist the latest handed-over cursor, end ``aborted``."""
        if self._iterator is not None:
            await self._iterator.aclose()
        self._started = True

    # -- the two loops --------------------------------------------------------------------

    def _begin(self) -> tuple[Job[C], Callable[[C], AsyncGenerator[C, None]]]:
        if self._started:
            raise RuntimeError(
                f"this run of {self._function.__qualname__} was already started; call the "
                "function again for a new run"
            )
        self._started = True
        return self._function.begin(self._args, self._kwargs)

    async def _run(self) -> Outcome[C]:
        job, start = self._begin()
        async with job:
            generator = start(job.cursor)
            try:
                await job.drive(generator)
            finally:
                await generator.aclose()
        assert job.outcome is not None
        self.outcome = job.outcome
        return job.outcome

    async def _watch(self) -> AsyncGenerator[C, None]:
        job, start = self._begin()
        try:
            async with job.hosted():
                generator = start(job.cursor)
                try:
                    async for cursor in job.watch(generator):
                        try:
                            yield cursor
                        except GeneratorExit:
                            self._left_early = True
                            raise
                finally:
                    await generator.aclose()
        except Exception:
            if not self._left_early:
                raise
            # Closed by `aclose()` or by the garbage collector: nobody is there to raise to.
            log.exception("job %r: ending the watched run failed", job.key)
        finally:
            self.outcome = job.outcome
