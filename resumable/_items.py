"""What an output becomes in the sink: the JSON its reader expects, or a refusal saying why.

Outputs go one way: nothing turns them back into Python objects, so the JSON in the sink is
all that anyone gets. Plain JSON values (dicts with string keys, lists, strings, numbers,
booleans, None) are stored as they are, tuples as arrays, and dict keys that are ints,
floats, booleans or None become strings, as `json.dumps` makes them. Anything else goes
through the job's cattrs converter, as a cursor does: attrs classes and dataclasses become
objects of their fields, datetimes and dates ISO 8601 strings, enums their values, UUIDs,
decimals and paths strings.

With resumable's own converter, what a cursor survives but a reader of the sink would not is
refused at the push: bytes (a cursor keeps them as base85 text, which means nothing to
whoever reads the dataset) and sets (JSON has no form for them, and their order is
arbitrary). A converter of the job's own (``converter=``) decides for itself.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any, get_origin

import cattrs

from resumable._codec import bytes_as_base85

_BYTES = (bytes, bytearray, memoryview)


class UnfitItemError(TypeError):
    """An output that its reader would not get back as pushed; the message says what to do."""


def for_outputs(converter: cattrs.Converter) -> cattrs.Converter:
    """Return the converter that turns outputs into JSON for a job with *converter*.

    A copy of resumable's own converter that refuses bytes and sets; a converter of the
    job's own as it is.
    """
    if not is_own(converter):
        return converter
    strict = converter.copy()
    for cls in _BYTES:
        strict.register_unstructure_hook(cls, _refuse_bytes)
    strict.register_unstructure_hook_func(_is_set, _refuse_set)
    return strict


def is_own(converter: cattrs.Converter) -> bool:
    """Whether *converter* is resumable's own (not one a job passed as ``converter=``)."""
    return converter.get_unstructure_hook(bytes) is bytes_as_base85


def _is_set(cls: Any) -> bool:
    origin = get_origin(cls) or cls
    return isinstance(origin, type) and issubclass(origin, AbstractSet)


def _refuse_bytes(value: bytes | bytearray | memoryview) -> Any:
    what = "bytes" if type(value) is bytes else f"a {type(value).__name__}"
    raise UnfitItemError(
        f"it holds {what} ({_short(value)}), which JSON has no form for. "
        "Decode them (value.decode()), or turn them into text yourself "
        "(base64.b64encode(value).decode()), before the push"
    )


def _refuse_set(value: AbstractSet[Any]) -> Any:
    raise UnfitItemError(
        f"it holds a {type(value).__name__} ({_short(value)}), which JSON has no form for "
        "and whose order is arbitrary. Push a list instead: sorted(value), or list(value)"
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
