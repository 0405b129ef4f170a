"""`@resumable`: drives an async generator of cursors through a `Job`."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
)
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, TypeVar, overload

import cattrs

from resumable._codec import Codec, Upgrade, make_converter
from resumable._engine import Interval, Job, OnCorrupt, resolve_defaults
from resumable._errors import InvalidOptionError, JobDefinitionError
from resumable._record import Outcome, Record
from resumable._stores import Store, check_key
from resumable._triggers import Trigger

P = ParamSpec("P")
C = TypeVar("C")

KeySpec = str | Callable[..., str] | None

_EXPECTED = (
    "@resumable decorates an async generator function (an `async def` that yields cursors) "
    "with a keyword parameter `cursor` whose default is the cursor of a fresh start, e.g. "
    "`async def backfill(*, cursor: int = 0): ...`"
)


class Run(Coroutine[Any, Any, Outcome[C]]):
    """One run of a resumable job: await it for its `Outcome`, or iterate it to watch.

    ``await run`` (or ``asyncio.run(run)``: a run is a coroutine) drives the job to its
    end. ``async for cursor in run`` drives the same checkpointed loop and hands over each
    cursor once the engine has recorded it; the `Outcome` is then in ``run.outcome``. A run
    can be started once.
    """

    def __init__(
        self, function: JobFunction[Any, C], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._started = False
        self._coroutine: Coroutine[Any, Any, Outcome[C]] | None = None
        self.outcome: Outcome[C] | None = None
        """How the run ended, once it has."""

    def __repr__(self) -> str:
        return f"<Run of {self._function.__qualname__} outcome={self.outcome!r}>"

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

    def __aiter__(self) -> AsyncIterator[C]:
        return self._watch()

    def _begin(self) -> tuple[Job[C], Callable[[C], AsyncGenerator[C, None]]]:
        if self._started:
            raise RuntimeError(
                f"this run of {self._function.__qualname__} was already started; call the "
                "function again for a new run"
            )
        self._started = True
        job, kwargs = self._function.make_job(*self._args, **self._kwargs)
        generator_function = self._function.__wrapped__

        def start(cursor: C) -> AsyncGenerator[C, None]:
            return generator_function(*self._args, cursor=cursor, **kwargs)

        return job, start

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
            async with job:
                generator = start(job.cursor)
                try:
                    async for cursor in job.watch(generator):
                        yield cursor
                finally:
                    await generator.aclose()
        finally:
            self.outcome = job.outcome


class JobFunction(Generic[P, C]):
    """A resumable job: call it to get a `Run`; ``state()`` and ``reset()`` manage its record."""

    __name__: str
    __qualname__: str

    def __init__(
        self,
        function: Callable[P, AsyncIterator[C]],
        *,
        key: KeySpec,
        options: dict[str, Any],
    ) -> None:
        self.cursor_type, self.default = _inspect(function)
        self.__wrapped__: Callable[..., AsyncGenerator[C, None]] = function  # type: ignore[assignment]
        functools.update_wrapper(self, function)
        self._key = key if key is not None else default_key(function)
        if isinstance(self._key, str):
            check_key(self._key, options.get("store"))
        self._options = options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Run[C]:
        """Start a run (await it, or iterate it)."""
        return Run(self, args, kwargs)

    @property
    def options(self) -> Mapping[str, Any]:
        """The options the job was declared with (``store``, ``every``, ...), read-only."""
        return MappingProxyType(self._options)

    def with_options(self, **overrides: Any) -> JobFunction[P, C]:
        """Return the same job with some options replaced.

        For example ``backfill.with_options(store=MemoryStore(), triggers=[])`` in a test.
        ``key=`` may be replaced too.

        Raises:
            InvalidOptionError: An option that `resumable` does not take.
        """
        key = overrides.pop("key", self._key)
        unknown = sorted(set(overrides) - set(self._options))
        if unknown:
            raise InvalidOptionError(
                f"{self.__qualname__}.with_options() got unknown options {unknown}; "
                f"it takes key and {sorted(self._options)}"
            )
        return JobFunction(self.__wrapped__, key=key, options={**self._options, **overrides})

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """Return the key the state of a call with these arguments lives under."""
        if isinstance(self._key, str):
            return self._key
        kwargs.pop("cursor", None)
        return check_key(self._key(*args, **kwargs), self._options.get("store"))

    def make_job(self, *args: Any, **kwargs: Any) -> tuple[Job[C], dict[str, Any]]:
        """Return the engine for a call with these arguments, and the arguments minus ``cursor``."""
        kwargs = dict(kwargs)
        default = kwargs.pop("cursor", self.default)
        job = Job(
            self.key_for(*args, **kwargs),
            cursor=default,
            cursor_type=self.cursor_type,
            **self._options,
        )
        return job, kwargs

    async def state(self, *args: Any, **kwargs: Any) -> Record[C] | None:
        """Return the persisted state of a call with these arguments, without running it.

        Raises:
            CorruptStateError: The stored record is unreadable.
            CursorTypeError: Its cursor does not fit the job's cursor type.
        """
        store = self._store()
        key = self.key_for(*args, **kwargs)
        data = await store.load(key)
        if data is None:
            return None
        options = self._options
        codec: Codec[C] = Codec(
            key,
            store,
            self.cursor_type,
            options.get("converter") or make_converter(),
            version=options.get("version", 1),
            upgrade=options.get("upgrade"),
        )
        return codec.decode(data)

    async def reset(self, *args: Any, **kwargs: Any) -> None:
        """Forget the persisted state of a call with these arguments: the next run starts fresh."""
        await self._store().delete(self.key_for(*args, **kwargs))

    def _store(self) -> Store:
        store, _, _ = resolve_defaults(self._options.get("store"), (), None)
        return store


def _inspect(function: object) -> tuple[Any, Any]:
    """Check that *function* can be a job; return its cursor type and fresh-start cursor."""
    if not inspect.isasyncgenfunction(function):
        raise JobDefinitionError(f"{_EXPECTED}; got {function!r}")
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
    return cursor_type, parameter.default


def default_key(function: Callable[..., Any]) -> str:
    """Derive a key from a function's qualified name (``<locals>`` dropped)."""
    name = function.__qualname__.replace("<locals>.", "")
    return re.sub(r"[^a-zA-Z0-9!\-_.'()]", "-", name)[:256] or "job"


@overload
def resumable(function: Callable[P, AsyncIterator[C]], /) -> JobFunction[P, C]: ...


@overload
def resumable(
    key: KeySpec = None,
    *,
    store: Store | None = None,
    every: int | None = None,
    interval: Interval = ...,
    converter: cattrs.Converter | None = None,
    triggers: Iterable[Trigger] | None = None,
    version: int = 1,
    upgrade: Mapping[int, Upgrade] | None = None,
    on_corrupt: OnCorrupt = "raise",
    warn_size: int = 64 * 1024,
    max_size: int = 1024 * 1024,
) -> Callable[[Callable[P, AsyncIterator[C]]], JobFunction[P, C]]: ...


def resumable(
    key: Any = None,
    *,
    store: Store | None = None,
    every: int | None = None,
    interval: Interval = ...,
    converter: cattrs.Converter | None = None,
    triggers: Iterable[Trigger] | None = None,
    version: int = 1,
    upgrade: Mapping[int, Upgrade] | None = None,
    on_corrupt: OnCorrupt = "raise",
    warn_size: int = 64 * 1024,
    max_size: int = 1024 * 1024,
) -> Any:
    """Make an async generator of cursors a job that resumes where it left off.

    Usable bare (``@resumable``) and with options (``@resumable(key=..., every=...)``).
    The decorated function's ``cursor`` parameter receives the persisted cursor on start
    (its default on a fresh start); its annotation is the cursor type.

    Args:
        key: The state's key, or a function of the job's arguments returning it. Default:
            the function's qualified name.
        store: Where to persist; default: the Actor's key-value store inside
            ``async with Actor:``, else ``FileStore(".resumable")``.
        every: Also save every N yields.
        interval: Save every N seconds (``None``: never on a timer). Default: 10 s, or the
            platform's ``persistState`` events inside an Actor.
        converter: A cattrs converter for the cursor type.
        triggers: What else saves or stops the job; default: SIGTERM/SIGINT, plus the
            platform's events inside an Actor.
        version: The cursor's version, stored with it.
        upgrade: ``{old_version: fn}``: raw JSON to raw JSON, applied on load one step at a time.
        on_corrupt: ``"raise"`` or ``"quarantine"`` (move a bad record aside and start fresh).
        warn_size: Warn once when a serialized cursor passes this many bytes.
        max_size: Refuse cursors that serialize to more bytes than this.

    Raises:
        TypeError: The decorated object is not an async generator function with a
            ``cursor`` keyword parameter that has a default.
    """
    options: dict[str, Any] = {
        "store": store,
        "every": every,
        "interval": interval,
        "converter": converter,
        "triggers": triggers,
        "version": version,
        "upgrade": upgrade,
        "on_corrupt": on_corrupt,
        "warn_size": warn_size,
        "max_size": max_size,
    }
    if inspect.isasyncgenfunction(key):
        return JobFunction(key, key=None, options=options)
    if callable(key) and _looks_like_a_job(key):
        raise JobDefinitionError(f"{_EXPECTED}; got {key!r}")
    if key is not None and not isinstance(key, str) and not callable(key):
        raise JobDefinitionError(f"key= must be a string or a function returning one, not {key!r}")

    def decorate(function: Callable[P, AsyncIterator[C]]) -> JobFunction[P, C]:
        return JobFunction(function, key=key, options=options)

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
