"""`@resumable`: drives a generator of cursors (async, or plain) through a `Job`."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, Protocol, TypeGuard, TypeVar, Unpack, overload

import attrs

from resumable._defaults import default_store
from resumable._engine import Job
from resumable._errors import JobDefinitionError
from resumable._job import admitting_none
from resumable._loop_thread import run_in_thread
from resumable._options import JobOptions, Options
from resumable._record import Outcome, Record
from resumable._run import Run
from resumable._stores import check_key
from resumable._sync import run_plain

P = ParamSpec("P")
C = TypeVar("C")

KeySpec = str | Callable[..., str] | None

_EXPECTED = (
    "@resumable decorates a generator function (an `async def` or a plain `def` that yields "
    "cursors) with a keyword parameter `cursor` whose default is the cursor of a fresh start, "
    "e.g. `async def backfill(*, cursor: int = 0): ...`"
)


class JobFunction(Generic[P, C]):
    """A resumable job: call it to get a `Run`; ``state()`` and ``reset()`` manage its record."""

    __name__: str
    __qualname__: str

    def __init__(
        self,
        function: Callable[P, AsyncIterator[C]],
        *,
        key: KeySpec,
        options: JobOptions,
    ) -> None:
        self.cursor_type, self.default = _inspect(function)
        self.takes_outbox = _takes_outbox(function)
        self.__wrapped__: Callable[..., AsyncGenerator[C, None]] = function  # type: ignore[assignment]
        functools.update_wrapper(self, function)
        self._key = key if key is not None else default_key(function)
        if isinstance(self._key, str):
            check_key(self._key, options.store)
        self._options = options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Run[C]:
        """Start a run (await it, or iterate it)."""
        return Run(self, args, kwargs)

    @property
    def options(self) -> Mapping[str, Any]:
        """The options the job was declared with (``store``, ``every``, ...), read-only."""
        return MappingProxyType(attrs.asdict(self._options, recurse=False))

    def with_options(self, **overrides: Any) -> JobFunction[P, C]:
        """Return the same job with some options replaced.

        For example ``backfill.with_options(store=MemoryStore(), triggers=[])`` in a test.
        ``key=`` may be replaced too.

        Raises:
            InvalidOptionError: An option that `resumable` does not take, or a bad value.
        """
        key = overrides.pop("key", self._key)
        options = self._options.evolve(f"{self.__qualname__}.with_options()", **overrides)
        return JobFunction(self.__wrapped__, key=key, options=options)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """Return the key the state of a call with these arguments lives under."""
        if isinstance(self._key, str):
            return self._key
        kwargs.pop("cursor", None)
        return check_key(self._key(*args, **kwargs), self._options.store)

    def make_job(self, *args: Any, **kwargs: Any) -> tuple[Job[C], dict[str, Any]]:
        """Return the engine for a call with these arguments, and the arguments minus ``cursor``."""
        kwargs = dict(kwargs)
        default = kwargs.pop("cursor", self.default)
        key = self.key_for(*args, **kwargs)
        return Job(key, cursor=default, cursor_type=self.cursor_type, options=self._options), kwargs

    async def state(self, *args: Any, **kwargs: Any) -> Record[C] | None:
        """Return the persisted state of a call with these arguments, without running it.

        Raises:
            CorruptStateError: The stored record is unreadable.
            CursorTypeError: Its cursor does not fit the job's cursor type.
        """
        store = default_store(self._options.store)
        key = check_key(self.key_for(*args, **kwargs), store)
        data = await store.load(key)
        if data is None:
            return None
        return self._options.codec(key, store, self.cursor_type).decode(data)

    async def reset(self, *args: Any, **kwargs: Any) -> None:
        """Forget the persisted state of a call with these arguments: the next run starts fresh."""
        store = default_store(self._options.store)
        await store.delete(check_key(self.key_for(*args, **kwargs), store))


class SyncJobFunction(JobFunction[P, C]):
    """A resumable job over a plain generator: calling it runs the job in the calling thread.

    The job's saves happen on an event loop it owns, in a thread of its own, so a ``yield``
    never waits for the store. ``state()`` and ``reset()`` are plain methods.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Outcome[C]:  # type: ignore[override]
        """Run the job to its end in the calling thread and return its `Outcome`."""
        job, rest = self.make_job(*args, **kwargs)
        if self.takes_outbox:
            rest["out"] = job.out
        generator_function: Callable[..., Iterator[C]] = self.__wrapped__  # type: ignore[assignment]
        return run_plain(job, lambda cursor: generator_function(*args, cursor=cursor, **rest))

    def with_options(self, **overrides: Any) -> SyncJobFunction[P, C]:
        """Return the same job with some options replaced (see `JobFunction.with_options`)."""
        key = overrides.pop("key", self._key)
        options = self._options.evolve(f"{self.__qualname__}.with_options()", **overrides)
        return SyncJobFunction(self.__wrapped__, key=key, options=options)

    def state(self, *args: Any, **kwargs: Any) -> Record[C] | None:  # type: ignore[override]
        """Return the persisted state of a call with these arguments, without running it."""
        return run_in_thread(super().state(*args, **kwargs))

    def reset(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Forget the persisted state of a call with these arguments."""
        run_in_thread(super().reset(*args, **kwargs))


def _takes_outbox(function: Callable[..., Any]) -> bool:
    """Whether the run passes *function* its outbox: it has a keyword-only ``out`` (after ``*``).

    A positional ``out`` is the job's own argument, unless it is annotated as an `Outbox`:
    then it is a mistake that would only show as a missing argument at the call.

    Raises:
        JobDefinitionError: ``out`` is annotated as an `Outbox` but not keyword-only.
    """
    out = inspect.signature(function).parameters.get("out")
    if out is None:
        return False
    if out.kind is inspect.Parameter.KEYWORD_ONLY:
        return True
    if "Outbox" in str(out.annotation):
        raise JobDefinitionError(
            f"The outbox parameter `out` of {function.__qualname__} comes before `*`, so the "
            "run cannot pass it: make it keyword-only, after `*` (e.g. `async def "
            f"{function.__name__}(*, cursor: int = 0, out: Outbox[dict])`)."
        )
    return False


def _not_a_job(function: object) -> JobDefinitionError:
    """The error for decorating something that is not a generator function."""
    if inspect.iscoroutinefunction(function):
        return JobDefinitionError(
            f"{function.__qualname__} is an `async def` that never yields, so it has no cursors "
            "to persist: a job yields a cursor after each unit of work it has done "
            "(`yield cursor`), e.g. `async def backfill(*, cursor: int = 0): ... yield "
            "page.next_offset`"
        )
    return JobDefinitionError(f"{_EXPECTED}; got {function!r}")


def _inspect(function: object) -> tuple[Any, Any]:
    """Check that *function* can be a job; return its cursor type and fresh-start cursor."""
    if not _is_generator_function(function):
        raise _not_a_job(function)
    parameter = inspect.signature(function).parameters.get("cursor")
    if parameter is None or parameter.kind not in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise JobDefinitionError(
            f"{_EXPECTED}; {function.__qualname__} has no keyword parameter `cursor`"
        )
    if parameter.default is inspect.Parameter.empty:
        raise JobDefinitionError(
            f"{_EXPECTED}; the `cursor` parameter of {function.__qualname__} has no default"
        )
    try:
        cursor_type = typing.get_type_hints(function).get("cursor")
    except Exception:  # noqa: BLE001 - an unresolvable annotation falls back to the default's type
        cursor_type = None
    if cursor_type is None:
        if parameter.default is None:
            raise JobDefinitionError(
                f"{_EXPECTED}; annotate `cursor` of {function.__qualname__} with its type "
                "(e.g. `cursor: int | None = None`)"
            )
        cursor_type = type(parameter.default)
    elif parameter.default is None:
        cursor_type = admitting_none(cursor_type)
    return cursor_type, parameter.default


def default_key(function: Callable[..., Any]) -> str:
    """Derive a key from a function's qualified name (``<locals>`` dropped)."""
    name = function.__qualname__.replace("<locals>.", "")
    return re.sub(r"[^a-zA-Z0-9!\-_.'()]", "-", name)[:256] or "job"


class _Decorate(Protocol):
    """What ``@resumable(...)`` with options returns: it decorates either kind of generator."""

    @overload
    def __call__(self, function: Callable[P, AsyncIterator[C]], /) -> JobFunction[P, C]: ...

    @overload
    def __call__(self, function: Callable[P, Iterator[C]], /) -> SyncJobFunction[P, C]: ...


def _is_generator_function(function: object) -> TypeGuard[Callable[..., Any]]:
    return inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function)


def _declare(function: Callable[P, Any], key: KeySpec, options: JobOptions) -> JobFunction[P, Any]:
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
    if _is_generator_function(key):
        return _declare(key, None, declared)
    if callable(key) and _looks_like_a_job(key):
        raise _not_a_job(key)
    if key is not None and not isinstance(key, str) and not callable(key):
        raise JobDefinitionError(f"key= must be a string or a function returning one, not {key!r}")

    def decorate(function: Callable[P, Any]) -> JobFunction[P, Any]:
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
