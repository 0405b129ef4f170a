"""Cursor stores: the protocol and the built-in stores."""

from resumable._stores._base import (
    KEY_PATTERN,
    Change,
    Guard,
    Store,
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
    "MemoryStore",
    "Store",
    "check_key",
    "guarded",
    "max_key_length",
]
