"""The errors and warnings that resumable raises on purpose."""

from __future__ import annotations


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


class ResumableWarning(UserWarning):
    """Category of resumable's warnings."""


class InvalidKeyError(ResumableError, ValueError):
    """A key that some store would refuse: not 1 to 256 characters from ``a-zA-Z0-9!-_.'()``."""


class InvalidOptionError(ResumableError, ValueError):
    """An option or argument whose value makes no sense (``every=0``, ``limit=0``, ...)."""


class JobDefinitionError(ResumableError, TypeError):
    """A job is defined wrongly: not an async generator function, no ``cursor`` parameter
    with a default, or a cursor type that cannot be told."""
