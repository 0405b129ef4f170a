"""`@resumable`: drives an async generator of cursors through a `Job`."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, TypeVar, overload

import attrs
import cattrs

from resumable._codec import Upgrade
from resumable._defaults import default_store
from resumable._engine import Job
from resumable._errors import JobDefinitionError
from resumable._job import admitting_none
from resumable._options import DEFAULT_GRACE, Interval, JobOptions, OnCorrupt
from resumable._record import Record
from resumable._run import Run
from resumable._sink import Sink
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
        self.takes_outbox = "out" in inspect.signature(function).parameters
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
    elif parameter.default is None:
        cursor_type = admitting_none(cursor_type)
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
    grace: float = DEFAULT_GRACE,
    sink: Sink | None = None,
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
    grace: float = DEFAULT_GRACE,
    sink: Sink | None = None,
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
        grace: Seconds the work in flight gets, after an abort or a signal, to reach its
            next yield before it is cancelled.
        sink: Where the outputs pushed into ``out`` go; default: the Actor's default
            dataset inside ``async with Actor:``, else ``.resumable/<key>.jsonl``.

    Raises:
        TypeError: The decorated object is not an async generator function with a
            ``cursor`` keyword parameter that has a default.
    """
    options = JobOptions(
        store=store,
        every=every,
        interval=interval,
        converter=converter,
        triggers=triggers,
        version=version,
        upgrade=upgrade,
        on_corrupt=on_corrupt,
        warn_size=warn_size,
        max_size=max_size,
        grace=grace,
        sink=sink,
    )
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
