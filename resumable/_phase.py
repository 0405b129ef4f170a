"""Where a run is in its life (`Phase`) and why it ends (`End`)."""

from __future__ import annotations

import enum

from resumable._record import Status


class Phase(enum.Enum):
    """Where a run is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSING = "closing"
    PARKED = "parked"
    DONE = "done"


class End(enum.Enum):
    """Why a run ends. What its last save writes is `status`, looked up from the end."""

    COMPLETED = "completed"  # the work finished
    MIGRATED = "migrated"  # a migration stopped the work: saved, waiting to be stopped
    ABORTED = "aborted"  # an abort, a signal, a notice, or a watcher that left early
    CANCELLED = "cancelled"  # the work was cancelled from outside the run
    FAILED = "failed"  # the work raised, or the writer failed the run
    FENCED = "fenced"  # another run owns the key

    @property
    def status(self) -> Status | None:
        """The status the run's last save writes (``None``: it writes nothing)."""
        return _LAST_STATUS[self]


_LAST_STATUS: dict[End, Status | None] = {
    End.COMPLETED: "completed",
    End.MIGRATED: "running",  # the next run resumes it: it is not over
    End.ABORTED: "aborted",
    End.CANCELLED: "aborted",  # the last cursor is kept, as an abort keeps it
    End.FAILED: "failed",
    End.FENCED: None,  # the record is the newer run's
}
