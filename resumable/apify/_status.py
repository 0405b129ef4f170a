"""`ApifyStatus`: the jobs' progress as the Actor run's status message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from apify import Actor

from resumable._progress import abbreviated
from resumable.apify._sdk import actor_is_running

if TYPE_CHECKING:
    from resumable._controls import Controls
    from resumable._triggers import Detach

__all__ = ["ApifyStatus"]

log = logging.getLogger("resumable")


class ApifyStatus:
    """Shows the job's progress as the Actor run's status message in the Apify console.

    Every *interval* seconds, and only when something changed, a timer sets a message such
    as ``crawl: 12,345 done this run (41.2/s), saved at 12,300``. It reads the job's counters
    and never touches the job's hot path. Jobs running side by side share one message, a
    line each. A failing update is logged once and tried again at the next tick. Outside
    the platform the SDK logs the message instead.

    Args:
        interval: Seconds between updates (the platform rate-limits API calls).
    """

    def __init__(self, *, interval: float = 15.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval= must be a positive number of seconds, not {interval!r}")
        self.interval = interval

    def __repr__(self) -> str:
        return f"ApifyStatus(interval={self.interval})"

    def attach(self, controls: Controls) -> Detach:
        """Report a job's progress until the returned callable is called."""
        entry = _board.add(controls, self.interval)
        return lambda: _board.remove(entry)


class _Progress:
    """One job on the status board, with what the rate is measured from."""

    def __init__(self, controls: Controls, interval: float) -> None:
        self.controls = controls
        self.interval = interval
        self.since = time.monotonic()
        self.yields = controls.yields

    def line(self, now: float) -> str:
        job = self.controls
        elapsed = now - self.since
        rate = (job.yields - self.yields) / elapsed if elapsed > 0 else 0.0
        self.since, self.yields = now, job.yields
        saved = abbreviated(job.persisted, 60)
        state = ", stopping" if job.stopping else ""
        return f"{job.key}: {job.yields:,} done this run ({rate:.1f}/s), saved at {saved}{state}"


class _StatusBoard:
    """The one status message of the Actor run, shared by the jobs that report to it."""

    def __init__(self) -> None:
        self._entries: list[_Progress] = []
        self._task: asyncio.Task[None] | None = None
        self._last = ""
        self._failed = False

    def add(self, controls: Controls, interval: float) -> _Progress:
        entry = _Progress(controls, interval)
        self._entries.append(entry)
        controls.refresh()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="resumable-apify-status"
            )
        return entry

    def remove(self, entry: _Progress) -> None:
        with contextlib.suppress(ValueError):
            self._entries.remove(entry)
        if not self._entries and self._task is not None:
            self._task.cancel()
            self._task = None
            self._last = ""

    async def _run(self) -> None:
        while self._entries:
            interval = min(entry.interval for entry in self._entries)
            await asyncio.sleep(interval)
            now = time.monotonic()
            message = "\n".join(entry.line(now) for entry in self._entries)
            for entry in self._entries:
                entry.controls.refresh()  # counts are published lazily: fresh for the next tick
            if message == self._last or not actor_is_running():
                continue
            self._last = message
            try:
                async with asyncio.timeout(interval):
                    await Actor.set_status_message(message)
            except Exception as exc:  # noqa: BLE001 - progress display must never break a job
                level = logging.DEBUG if self._failed else logging.WARNING
                self._failed = True
                log.log(level, "could not set the Actor's status message: %r", exc)
            else:
                self._failed = False


_board = _StatusBoard()
