"""`job()`: the context-manager face of the engine."""

from __future__ import annotations

import typing
from types import NoneType, UnionType
from typing import Any, TypeVar, Unpack

from resumable._engine import Job
from resumable._errors import JobDefinitionError
from resumable._options import JobOptions, Options

C = TypeVar("C")


def admitting_none(cursor_type: Any) -> Any:
    """Return *cursor_type*, widened to ``cursor_type | None`` unless it admits ``None``.

    A job whose fresh-start cursor is ``None`` stores ``None`` until it advances, whether
    its type is written ``datetime`` or ``datetime | None``.
    """
    if cursor_type is None or cursor_type is NoneType or cursor_type is Any:
        return cursor_type
    origin = typing.get_origin(cursor_type)
    if (origin is typing.Union or origin is UnionType) and NoneType in typing.get_args(cursor_type):
        return cursor_type
    return typing.Optional[cursor_type]  # noqa: UP045 - the type is a runtime value here


def job(key: str, cursor: C, *, cursor_type: Any = None, **options: Unpack[Options]) -> Job[C]:
    """Make a resumable job to run as ``async with job(key, cursor=default) as j:``.

    On entry, the persisted cursor of *key* (if any) becomes ``j.cursor``; the body calls
    ``j.advance(cursor)`` as work completes and checks ``j.stopping``; leaving the block
    persists the latest cursor with status ``"completed"`` (``"failed"`` when an exception
    leaves it, ``"aborted"`` after an abort or a signal).

    Args:
        key: Where the state lives (1-256 characters of ``a-zA-Z0-9!-_.'()``).
        cursor: The cursor of a fresh start.
        cursor_type: The cursor's type, when it is not ``type(cursor)`` (required when the
            default is ``None``; ``None`` is then always storable).
        options: ``store``, ``every``, ``interval``, ``converter``, ``triggers``,
            ``version``, ``upgrade``, ``on_corrupt``, ``warn_size``, ``max_size``, ``grace``
            and ``sink``, as `JobOptions` describes them (``grace``: the seconds the body
            gets, after an abort or a signal, to see ``j.stopping`` and leave the block).
    """
    declared = JobOptions.of("job()", options)
    if cursor_type is None:
        if cursor is None:
            raise JobDefinitionError(
                f"job({key!r}, cursor=None) cannot tell the cursor's type: pass cursor_type=, "
                "e.g. cursor_type=datetime"
            )
        cursor_type = type(cursor)
    elif cursor is None:
        cursor_type = admitting_none(cursor_type)
    return Job(key, cursor=cursor, cursor_type=cursor_type, options=declared)
