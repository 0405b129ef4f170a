"""`Declared`: a generator function declared a job, the core of both kinds of job function.

What a decorated function knows before it runs: its cursor type and fresh-start cursor, its
key (or how to derive one from the arguments), its options, whether it takes the outbox, and
how to make the engine for a call and start the generator on the cursor it resumes from. The
two faces (`JobFunction` for an ``async def``, `SyncJobFunction` for a plain ``def``) are
siblings over it: each adds how a call runs and how ``state()`` and ``reset()`` are called.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, Self, TypeGuard, TypeVar

import attrs

from resumable._defaults import default_store
from resumable._engine import Job
from resumable._errors import JobDefinitionError
from resumable._job import admitting_none
from resumable._options import JobOptions
from resumable._record import Record
from resumable._stores import check_key

P = ParamSpec("P")
C = TypeVar("C")
G = TypeVar("G")

KeySpec = str | Callable[..., str] | None

_EXPECTED = (
    "@resumable decorates a generator function (an `async def` or a plain `def` that yields "
    "cursors) with a keyword parameter `cursor` whose default is the cursor of a fresh start, "
    "e.g. `async def backfill(*, cursor: int = 0): ...`"
)


class Declared(Generic[P, C, G]):
    """A generator function (returning *G*s) declared a resumable job with its options.

    Attributes:
        cursor_type: The cursor type (the annotation of ``cursor``).
        default: The fresh-start cursor (the default of ``cursor``).
        takes_outbox: Whether the function takes the run's outbox as ``out``.
    """

    __name__: str
    __qualname__: str

    def __init__(self, function: Callable[..., G], *, key: KeySpec, options: JobOptions) -> None:
        self.cursor_type, self.default = _inspect(function)
        self.takes_outbox = _takes_outbox(function)
        self.__wrapped__ = function
        # Its name, docs and module: the faces are callable, the core alone is not.
        functools.update_wrapper(typing.cast("Callable[..., Any]", self), function)
        self._key = key if key is not None else default_key(function)
        if isinstance(self._key, str):
            check_key(self._key, options.store)
        self._options = options

    @property
    def options(self) -> Mapping[str, Any]:
        """The options the job was declared with (``store``, ``every``, ...), read-only."""
        return MappingProxyType(attrs.asdict(self._options, recurse=False))

    def with_options(self, **overrides: Any) -> Self:
        """Return the same job with some options replaced.

        For example ``backfill.with_options(store=MemoryStore(), triggers=[])`` in a test.
        ``key=`` may be replaced too.

        Raises:
            InvalidOptionError: An option that `resumable` does not take, or a bad value.
        """
        key = overrides.pop("key", self._key)
        options = self._options.evolve(f"{self.__qualname__}.with_options()", **overrides)
        return type(self)(self.__wrapped__, key=key, options=options)

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

    def begin(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Job[C], Callable[[C], G]]:
        """Return the engine for a call, and what starts the generator at a cursor.

        The generator gets the call's arguments, the cursor, and the run's outbox as
        ``out`` if it takes one.
        """
        job, rest = self.make_job(*args, **kwargs)
        if self.takes_outbox:
            rest["out"] = job.out
        function = self.__wrapped__

        def start(cursor: C) -> G:
            return function(*args, cursor=cursor, **rest)

        return job, start

    async def _load(self, *args: Any, **kwargs: Any) -> Record[C] | None:
        """The persisted state of a call with these arguments (see the faces' ``state``)."""
        store = default_store(self._options.store)
        key = check_key(self.key_for(*args, **kwargs), store)
        data = await store.load(key)
        if data is None:
            return None
        return self._options.codec(key, store, self.cursor_type).decode(data)

    async def _forget(self, *args: Any, **kwargs: Any) -> None:
        """Delete the persisted state of a call with these arguments."""
        store = default_store(self._options.store)
        await store.delete(check_key(self.key_for(*args, **kwargs), store))


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


def not_a_job(function: object) -> JobDefinitionError:
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
    if not is_generator_function(function):
        raise not_a_job(function)
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


def is_generator_function(function: object) -> TypeGuard[Callable[..., Any]]:
    return inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function)
