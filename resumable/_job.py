"""`job()`: the context-manager face of the engine."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from types import NoneType, UnionType
from typing import Any, TypeVar

import cattrs

from resumable._codec import Upgrade
from resumable._engine import Job
from resumable._errors import JobDefinitionError
from resumable._options import DEFAULT_GRACE, Interval, JobOptions, OnCorrupt
from resumable._sink import Sink
from resumable._stores import Store
from resumable._triggers import Trigger

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


def job(
    key: str,
    cursor: C,
    *,
    cursor_type: Any = None,
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
) -> Job[C]:
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
        store: Where to persist; default: the Actor's key-value store inside
            ``async with Actor:``, else ``FileStore(".resumable")``.
        every: Also save every N advances.
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
        grace: Seconds the body gets, after an abort or a signal, to see ``j.stopping`` and
            leave the block by itself before it is cancelled.
        sink: Where the outputs pushed into ``j.out`` go; default: the Actor's default
            dataset inside ``async with Actor:``, else ``.resumable/<key>.jsonl``.
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
    if cursor_type is None:
        if cursor is None:
            raise JobDefinitionError(
                f"job({key!r}, cursor=None) cannot tell the cursor's type: pass cursor_type=, "
                "e.g. cursor_type=datetime"
            )
        cursor_type = type(cursor)
    elif cursor is None:
        cursor_type = admitting_none(cursor_type)
    return Job(key, cursor=cursor, cursor_type=cursor_type, options=options)
