"""How a record travels to and from a key-value store: JSON as JSON, anything else as bytes."""

from __future__ import annotations

import json
from typing import Any, Final

JSON: Final = "application/json; charset=utf-8"
BINARY: Final = "application/octet-stream"


def decoded(data: bytes) -> tuple[Any, str]:
    """Return what to hand a key-value store for *data*, and its content type.

    JSON goes in as JSON, so the Apify console shows a record as readable JSON; anything
    else (a quarantined record) as bytes, kept byte for byte.
    """
    try:
        return json.loads(data), JSON
    except ValueError:
        return bytes(data), BINARY


def encoded(value: object) -> bytes:
    """Return the bytes of a value a key-value store handed back."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
