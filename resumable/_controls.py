"""`Controls`: the narrow view of a running job that triggers and displays are given.

A trigger never sees the engine itself: it reads a few counters and asks for saves and
stops through these methods, each of which returns at once or is bounded in time.
"""

from __future__ import annotations

from typing import Any, Protocol


class Controls(Protocol):
    """What a trigger may read of a running job and ask of it."""

    @property
    def key(self) -> str:
        """The key the job's state lives under."""
        ...

    @property
    def stopping(self) -> bool:
        """Whether the job has stopped taking new work (migration, abort, signal, notice)."""
        ...

    @property
    def yields(self) -> int:
        """Cursors yielded so far in this run (published lazily: call `refresh` first)."""
        ...

    @property
    def saves(self) -> int:
        """Store writes made in this run."""
        ...

    @property
    def interruptible(self) -> bool:
        """Whether a stop has done all it can while the process lives: its save is made, and
        the work is cut and still running, or runs in a plain generator's thread, which no
        cut stops. Interrupting the process then loses nothing the job could still save."""
        ...

    @property
    def persisted(self) -> Any:
        """The cursor of the latest write."""
        ...

    def refresh(self) -> None:
        """Ask the hot path to bring `yields` up to date at the next cursor."""
        ...

    def pause(self, budget: float | None = None) -> None:
        """Stop taking new work from the next cursor on; returns at once, never blocks.

        *budget*: the seconds the saves that follow may take (a migration's), if known.
        """
        ...

    def request_save(self) -> None:
        """Ask for a save of the latest cursor soon (coalesced); returns at once."""
        ...

    async def migrate(self, timeout: float | None = None) -> None:
        """Save within *timeout* seconds, then stop taking work and wait to be stopped."""
        ...

    async def abort(self, reason: str = "aborted", *, budget: float | None = None) -> None:
        """Save within *budget* seconds, stop the work (after its grace) and end ``aborted``."""
        ...
