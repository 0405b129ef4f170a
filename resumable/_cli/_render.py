"""How records look on a terminal: tables, shortened JSON, ages."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import IO, Any

CURSOR_WIDTH = 40


def table(rows: Sequence[Sequence[str]], out: IO[str] | None = None) -> None:
    """Print *rows* as left-aligned columns two spaces apart."""
    out = out or sys.stdout
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=out)


def dump(value: Any) -> str:
    """A JSON value on one line, as a person reads it."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def short(text: str, width: int = CURSOR_WIDTH) -> str:
    """*text* cut to *width* characters, with an ellipsis when it was cut."""
    return text if len(text) <= width else text[: width - 3] + "..."


def age(delta: timedelta) -> str:
    """A duration in its largest whole unit: ``3 min``, ``2 d``."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
