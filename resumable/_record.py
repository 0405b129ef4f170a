"""The values a run hands back: `Record` (what a store holds) and `Outcome` (how a run ended)."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime
from typing import Generic, Literal, TypeAlias, TypeVar

import attrs

C = TypeVar("C")

Status: TypeAlias = Literal["running", "completed", "failed", "aborted"]
"""The life-cycle state written with every record."""

EndStatus: TypeAlias = Literal["completed", "aborted"]
"""How a run that returned (rather than raised) ended."""


@attrs.frozen
class Record(Generic[C]):
    """A persisted state as loaded from a store.

    Attributes:
        key: The job's key.
        cursor: The cursor, structured into the job's type when loaded through a job,
            raw JSON otherwise.
        status: ``"running"``, ``"completed"``, ``"failed"`` or ``"aborted"``.
        seq: Increases by one with every write of the key.
        owner: Identifies the run that wrote the record.
        updated_at: When the record was written (timezone-aware, UTC).
        version: The cursor version the record was written with.
    """

    key: str
    cursor: C
    status: Status
    seq: int
    owner: str
    updated_at: datetime
    version: int = 1


@attrs.frozen
class Outcome(Generic[C]):
    """What a finished run returns.

    Attributes:
        key: The job's key.
        status: ``"completed"`` when the generator finished, ``"aborted"`` when an abort
            (SIGTERM, SIGINT, the platform's ``aborting`` event) stopped it.
        cursor: The last persisted cursor.
        resumed_from: The cursor the run started from, or ``None`` on a fresh start.
        yields: How many cursors the job yielded in this run.
        saves: How many store writes this run made.
        outputs: How many outbox items this run delivered to its sink (0 without one).
    """

    key: str
    status: EndStatus
    cursor: C
    resumed_from: C | None
    yields: int
    saves: int
    outputs: int = 0


def owner_id() -> str:
    """Name a run, as its records' ``owner``: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
