"""Cursor stores: the protocol, the capabilities a store may add, and the built-in stores."""

from resumable._stores._base import (
    KEY_PATTERN,
    Change,
    Guard,
    HasCliLocation,
    HasKeyLimit,
    Store,
    SupportsAclose,
    SupportsOpen,
    SupportsUpdate,
    check_key,
    guarded,
    max_key_length,
)
from resumable._stores._file import FileStore
from resumable._stores._memory import MemoryStore

__all__ = [
    "KEY_PATTERN",
    "Change",
    "FileStore",
    "Guard",
    "HasCliLocation",
    "HasKeyLimit",
    "MemoryStore",
    "Store",
    "SupportsAclose",
    "SupportsOpen",
    "SupportsUpdate",
    "check_key",
    "guarded",
    "max_key_length",
]
