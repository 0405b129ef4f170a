"""Where a run is in its life (`Phase`) and why it ends (`End`)."""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    """Where a run is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSING = "closing"
    PARKED = "parked"
    DONE = "done"


class End(enum.Enum):
    """Why a run ends; each end writes one status last."""

    COMPLETED = "completed"
    MIGRATED = "running"
    ABORTED = "aborted"
    CANCELLED = "aborted"  # noqa: PIE796 - a distinct reason that writes the same status
    FAILED = "failed"
    FENCED = "fenced"  # another run owns the key: nothing is written
