"""`RunView`: what a run shows, read-only, written once for both of its faces.

`Job` (the engine, and the ``async with`` face) holds these facts itself: its attributes
shadow the properties below, so reading one costs what reading a slot costs. `SyncJob` (the
plain ``with`` face) is another object over the same run: it gets them from here, each read
through to the run. A new fact of a run is added here, once, and both faces show it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from resumable._outbox import Outbox
from resumable._record import Outcome
from resumable._stores import Store

C = TypeVar("C")


class RunView(Generic[C]):
    """The read-only facts of one run of a job, as either face shows them."""

    __slots__ = ()

    _run: RunView[C]
    """The run whose facts these are (`SyncJob`'s engine; never read on `Job` itself)."""

    @property
    def key(self) -> str:
        """The key the state lives under."""
        return self._run.key

    @property
    def store(self) -> Store | None:
        """Where the state lives (resolved when the run starts)."""
        return self._run.store

    @property
    def cursor(self) -> C:
        """The resume point, then the latest advanced cursor."""
        return self._run.cursor

    @property
    def resumed(self) -> bool:
        """Whether a persisted cursor was found at start."""
        return self._run.resumed

    @property
    def resumed_from(self) -> C | None:
        """The persisted cursor the run started from, or ``None``."""
        return self._run.resumed_from

    @property
    def stopping(self) -> bool:
        """Whether the job should take no new work (a migration, an abort, a signal)."""
        return self._run.stopping

    @property
    def yields(self) -> int:
        """Cursors advanced in this run (under ``drive``, published lazily: ``refresh``)."""
        return self._run.yields

    @property
    def saves(self) -> int:
        """Store writes made in this run."""
        return self._run.saves

    @property
    def persisted(self) -> C:
        """The cursor of the latest write (the resume point before the first)."""
        return self._run.persisted

    @property
    def outcome(self) -> Outcome[C] | None:
        """How the run ended, once it has."""
        return self._run.outcome

    @property
    def out(self) -> Outbox[Any]:
        """The run's outbox: what is pushed into it reaches the sink exactly once.

        Using it makes the run deliver its outputs to its sink.

        Raises:
            FinishedJobError: The run has ended.
        """
        return self._run.out
