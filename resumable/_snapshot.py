"""Snapshots: a cursor as it was at the moment it was yielded.

A job may change a cursor object in place after yielding it (bump a dict's ``"next"``,
append to a list). What is persisted must be the value yielded at that moment, so a cursor
that can change is copied at each yield, as the JSON data it serializes to; one that cannot
change (numbers, strings, tuples of such, frozen classes, datetimes, ...) is kept by
reference, which costs nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

_ATOMS = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    Decimal,
    Fraction,
    uuid.UUID,
    PurePath,
    enum.Enum,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
    range,
)


@attrs.frozen
class Raw:
    """A copy of a cursor, as the JSON data it serializes to."""

    data: Any


def immutable(value: object, depth: int = 0) -> bool:  # noqa: PLR0911 - one return a kind
    """Whether *value* can never change after it was yielded (so needs no copy).

    Atoms, tuples and frozensets of immutable values, and frozen attrs classes and
    dataclasses whose fields hold immutable values. Anything else is copied.
    """
    if depth > 32:
        return False
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, tuple | frozenset):
        return all(immutable(item, depth + 1) for item in value)
    cls: Any = type(value)
    if dataclasses.is_dataclass(cls):
        if not getattr(cls, "__dataclass_params__").frozen:  # noqa: B009 - not in the stubs
            return False
        return all(immutable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(cls))
    if attrs.has(cls):
        return _attrs_frozen(value) and all(
            immutable(getattr(value, a.name), depth + 1) for a in attrs.fields(cls)
        )
    return False


def frozen_copy(value: T) -> T:
    """Return *value* itself when it cannot change, else a deep copy of it."""
    return value if immutable(value) else copy.deepcopy(value)


def _attrs_frozen(value: Any) -> bool:
    """Tell a frozen attrs instance by trying to set a field on a copy of it."""
    fields = attrs.fields(type(value))
    if not fields:
        return True
    name = fields[0].name
    probe = copy.copy(value)
    try:
        setattr(probe, name, getattr(probe, name))
    except attrs.exceptions.FrozenInstanceError:
        return True
    except Exception:  # noqa: BLE001 - a setter that refuses in its own way: treat as mutable
        return False
    return False
