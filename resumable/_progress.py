"""`Progress`: one line on the terminal that says how a running job is doing.

It is a trigger that never triggers anything: it reads the job's counters on a timer, off
the hot path, and redraws one line (items, rate, last saved cursor, time since that save).
It draws only on a terminal, so logs, pipes and CI output never see it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from resumable._controls import Controls
    from resumable._triggers import Detach

ENV = "RESUMABLE_PROGRESS"
"""``0`` turns the progress line off everywhere; ``1`` draws it even when not on a terminal."""

_CLEAR = "\x1b[K"  # erase to the end of the line, so a shorter line leaves no tail behind
_RATE_WINDOW = 10  # ticks the rate is measured over: recent speed, not the run's average
_CURSOR_WIDTH = 40


class Progress:
    """Draw a job's progress on one terminal line while it runs.

    Every *interval* seconds it shows, for example,
    ``backfill: 12,345 items, 410.2/s, saved Page(offset=12300) 3 s ago``, reading
    ``job.yields``, ``job.persisted`` and ``job.saves``; the job's hot path is untouched. The
    line appears only after *delay* seconds, so short jobs never show it, and is erased when
    the job ends. Nothing is drawn unless *stream* is a terminal. The environment variable
    ``RESUMABLE_PROGRESS=0`` turns it off (for a job that prints its own output), ``1``
    draws even when the stream is not a terminal. ``triggers=`` replaces the default
    triggers, so keep the signals when adding it by hand:
    ``triggers=[Signals(), Progress()]``.

    Args:
        stream: Where to draw; default: standard error, as it is when the job starts.
        interval: Seconds between redraws.
        delay: Seconds before the first draw.
    """

    def __init__(
        self, *, stream: TextIO | None = None, interval: float = 0.5, delay: float = 2.0
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval= must be a positive number of seconds, not {interval!r}")
        if delay < 0:
            raise ValueError(f"delay= must be 0 or more seconds, not {delay!r}")
        self.stream = stream
        self.interval = interval
        self.delay = delay

    def __repr__(self) -> str:
        return f"Progress(interval={self.interval}, delay={self.delay})"

    def enabled(self, stream: TextIO) -> bool:
        """Tell whether to draw on *stream*: a terminal, unless the environment says otherwise."""
        setting = os.environ.get(ENV, "").strip()
        if setting in ("0", "1"):
            return setting == "1"
        try:
            return stream.isatty() and os.environ.get("TERM") != "dumb"
        except ValueError:  # a closed stream
            return False

    def attach(self, job: Controls) -> Detach:
        """Start drawing *job*'s line after the delay; return what erases it and stops."""
        stream = self.stream if self.stream is not None else sys.stderr
        if not self.enabled(stream):
            return _nothing
        line = _Line(job, stream, self.interval, asyncio.get_running_loop())
        line.start(self.delay)
        return line.stop


def abbreviated(value: object, width: int) -> str:
    """Return ``repr(value)``, cut to *width* characters with ``...`` when longer."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class _Line:
    """The progress line of one job run."""

    def __init__(
        self, job: Controls, stream: TextIO, interval: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.job = job
        self.stream = stream
        self.interval = interval
        self.loop = loop
        now = loop.time()
        self.samples = collections.deque([(now, job.yields)], maxlen=_RATE_WINDOW)
        self.saves = job.saves
        self.saved_at = now
        self.drawn = False
        self.handle: asyncio.TimerHandle | None = None

    def start(self, delay: float) -> None:
        self.job.refresh()
        self.handle = self.loop.call_later(delay, self.tick)

    def tick(self) -> None:
        now = self.loop.time()
        job = self.job
        if job.saves != self.saves:
            # Noticed at tick granularity: "time since the save" is off by one interval at most.
            self.saves, self.saved_at = job.saves, now
        self.samples.append((now, job.yields))
        if not self.write("\r" + self.text(now) + _CLEAR):
            return
        self.drawn = True
        job.refresh()  # the decorator publishes its count lazily: have it fresh for next tick
        self.handle = self.loop.call_later(self.interval, self.tick)

    def text(self, now: float) -> str:
        job = self.job
        since, count = self.samples[0]
        rate = (job.yields - count) / (now - since) if now > since else 0.0
        saved = abbreviated(job.persisted, _CURSOR_WIDTH)
        text = (
            f"{job.key}: {job.yields:,} items, {rate:,.1f}/s, "
            f"saved {saved} {_ago(now - self.saved_at)} ago"
        )
        if job.stopping:
            text += ", stopping"
        # One column short of the width: a full line would wrap on some terminals.
        return text[: shutil.get_terminal_size().columns - 1]

    def write(self, text: str) -> bool:
        """Write *text*; on a broken stream give up quietly: progress must never break a job."""
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            return False
        return True

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if self.drawn:
            self.write("\r" + _CLEAR)
            self.drawn = False


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def _nothing() -> None:
    pass
