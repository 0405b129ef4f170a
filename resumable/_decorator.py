"""`@resumable`: declares a generator of cursors (async, or plain) a job of either face.

Both faces are siblings over one declared-job core (`resumable._declared`): `JobFunction`
runs an ``async def`` generator as a `Run`, `SyncJobFunction` runs a plain one to its end in
the calling thread.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any, ParamSpec, Protocol, TypeVar, Unpack, overload

from resumable._declared import Declared, KeySpec, is_generator_function, not_a_job
from resumable._errors import JobDefinitionError
from resumable._loop_thread import run_in_thread
from resumable._options import JobOptions, Options
from resumable._record import Outcome, Record
from resumable._run import Run
from resumable._sync import run_plain

P = ParamSpec("P")
C = TypeVar("C")


class JobFunction(Declared[P, C, AsyncGenerator[C, None]]):
    """A resumable job: call it to get a `Run`; ``state()`` and ``reset()`` manage its record."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Run[C]:
        """Start a run (await it, or iterate it)."""
        return Run(self, args, kwargs)

    async def state(self, *args: Any, **kwargs: Any) -> Record[C] | None:
        """Return the persisted state of a call with these arguments, without running it.

        Raises:
            CorruptStateError: The stored record is unreadable.
            CursorTypeError: Its cursor does not fit the job's cursor type.
        """
        return await self._load(*args, **kwargs)

    async def reset(self, *args: Any, **kwargs: Any) -> None:
        """Forget the persisted state of a call with these arguments: the next run starts fresh."""
        await self._forget(*args, **kwargs)


class SyncJobFunction(Declared[P, C, Iterator[C]]):
    """A resumable job over a plain generator: calling it runs the job in the calling thread.

    The job's saves happen on an event loop it owns, in a thread of its own, so a ``yield``
    never waits for the store. ``state()`` and ``reset()`` are plain methods.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Outcome[C]:
        """Run the job to its end in the calling thread and return its `Outcome`."""
        job, start = self.begin(args, kwargs)
        return run_plain(job, start)

    def state(self, *args: Any, **kwargs: Any) -> Record[C] | None:
        """Return the persisted state of a call with these arguments, without running it.

        Raises:
            CorruptStateError: The stored record is unreadable.
            CursorTypeError: Its cursor does not fit the job's cursor type.
        """
        return run_in_thread(self._load(*args, **kwargs))

    def reset(self, *args: Any, **kwargs: Any) -> None:
        """Forget the persisted state of a call with these arguments: the next run starts fresh."""
        run_in_thread(self._forget(*args, **kwargs))


class _Decorate(Protocol):
    """What ``@resumable(...)`` with options returns: it decorates either kind of generator."""

    @overload
    def __call__(self, function: Callable[P, AsyncIterator[C]], /) -> JobFunction[P, C]: ...

    @overload
    def __call__(self, function: Callable[P, Iterator[C]], /) -> SyncJobFunction[P, C]: ...


def _declare(
    function: Callable[P, Any], key: KeySpec, options: JobOptions
) -> JobFunction[P, Any] | SyncJobFunction[P, Any]:
    if inspect.isgeneratorfunction(function):
        return SyncJobFunction(function, key=key, options=options)
    return JobFunction(function, key=key, options=options)


@overload
def resumable(function: Callable[P, AsyncIterator[C]], /) -> JobFunction[P, C]: ...


@overload
def resumable(function: Callable[P, Iterator[C]], /) -> SyncJobFunction[P, C]: ...


@overload
def resumable(key: KeySpec = None, **options: Unpack[Options]) -> _Decorate: ...


def resumable(key: Any = None, **options: Unpack[Options]) -> Any:
    """Make an async generator of cursors a job that resumes where it left off.

    Usable bare (``@resumable``) and with options (``@resumable(key=..., every=...)``).
    The decorated function's ``cursor`` parameter receives the persisted cursor on start
    (its default on a fresh start); its annotation is the cursor type.

    Args:
        key: The state's key, or a function of the job's arguments returning it. Default:
            the function's qualified name.
        options: ``store``, ``every``, ``interval``, ``converter``, ``triggers``,
            ``version``, ``upgrade``, ``on_corrupt``, ``warn_size``, ``max_size``, ``grace``
            and ``sink``, as `JobOptions` describes them.

    Raises:
        TypeError: The decorated object is not an async generator function with a
            ``cursor`` keyword parameter that has a default.
    """
    declared = JobOptions.of("@resumable", options)
    if is_generator_function(key):
        return _declare(key, None, declared)
    if callable(key) and _looks_like_a_job(key):
        raise not_a_job(key)
    if key is not None and not isinstance(key, str) and not callable(key):
        raise JobDefinitionError(f"key= must be a string or a function returning one, not {key!r}")

    def decorate(function: Callable[P, Any]) -> JobFunction[P, Any] | SyncJobFunction[P, Any]:
        return _declare(function, key, declared)

    return decorate


def _looks_like_a_job(function: Callable[..., Any]) -> bool:
    """Tell a misdecorated job (``@resumable`` on a coroutine, say) from a key function."""
    if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
        return True
    if inspect.isclass(function):
        return True
    try:
        return "cursor" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
