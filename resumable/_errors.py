"""The errors and warnings that resumable raises on purpose."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


class ResumableError(Exception):
    """Base class of every error resumable raises on purpose."""


class CursorTypeError(ResumableError, TypeError):
    """A stored cursor does not fit the job's cursor type, or a yielded one cannot be stored."""


class CorruptStateError(ResumableError):
    """A stored record is unreadable: not JSON, not resumable's format, or missing fields."""


class StaleWriterError(ResumableError):
    """Another run of the same key took over; this run must not overwrite its progress."""


class StoreError(ResumableError):
    """A store operation still failed after its retries; the cause is chained."""


class SinkError(StoreError):
    """Delivering outputs to a sink, or reading them back, still failed after its retries.

    The sink failed, not the store: the record holds the outputs as pending, and the next
    save (or the next run of the key) delivers them. The sink's own error is chained. A
    `StoreError` too, so that code catching the store's failures keeps catching the sink's.
    """


class FinishedJobError(ResumableError, RuntimeError):
    """A `Job` or its `Outbox` was used after its run ended, or a `Job` was entered twice."""


class ResumableWarning(UserWarning):
    """Category of resumable's warnings."""


def warn(message: str) -> None:
    """Warn with a `ResumableWarning` that points at the user's line: the first caller
    outside this package."""
    level, frame = 2, sys._getframe(1)  # noqa: SLF001 - the standard way to walk the stack
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, ResumableWarning, stacklevel=level)


class InvalidKeyError(ResumableError, ValueError):
    """A key that some store would refuse: not 1 to 256 characters from ``a-zA-Z0-9!-_.'()``."""


class InvalidOptionError(ResumableError, ValueError):
    """An option or argument whose value makes no sense (``every=0``, ``limit=0``, ...)."""


class JobDefinitionError(ResumableError, TypeError):
    """A job is defined wrongly: not an async generator function, no ``cursor`` parameter
    with a default, or a cursor type that cannot be told."""
