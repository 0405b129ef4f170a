"""`Progress`: the progress line a person sees on a terminal, and nobody else."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from resumable import MemoryStore, job, resumable
from resumable._progress import ENV, Progress
from tests.helpers import wait_until


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class BrokenTerminal(Terminal):
    """A terminal that went away (the ssh session closed)."""

    def write(self, text: str) -> int:
        raise OSError("EIO")


@pytest.fixture(autouse=True)
def _no_progress_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decides the environment variable itself."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("TERM", raising=False)


def draws(stream: io.StringIO) -> list[str]:
    """The lines drawn so far, without the terminal control sequences."""
    return [part.replace("\x1b[K", "") for part in stream.getvalue().split("\r") if part]


async def test_draws_items_rate_and_the_saved_cursor_then_erases_the_line() -> None:
    """On a terminal the line shows the key, items, rate and last save, and is erased at the end."""
    terminal = Terminal()
    progress = Progress(stream=terminal, interval=0.01, delay=0)

    async with job("crawl", 0, store=MemoryStore(), interval=None, triggers=[progress]) as j:
        for i in range(5):
            j.advance(i + 1)
        await j.save()
        for i in range(5, 12):
            j.advance(i + 1)
        await wait_until(lambda: "12 items" in terminal.getvalue())

    line = next(d for d in draws(terminal) if "12 items" in d)
    assert line.startswith("crawl: 12 items, ")
    assert "/s, saved 5 0 s ago" in line
    assert terminal.getvalue().endswith("\r\x1b[K")


async def test_works_as_a_trigger_of_the_decorator() -> None:
    """``triggers=[Progress()]`` on ``@resumable`` draws the generator's progress."""
    terminal = Terminal()

    @resumable(
        "slow", store=MemoryStore(), triggers=[Progress(stream=terminal, interval=0.01, delay=0)]
    )
    async def slow(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 30):
            await asyncio.sleep(0.002)
            yield i + 1

    outcome = await slow()

    assert 30 == outcome.cursor
    assert any(d.startswith("slow: ") and " items, " in d for d in draws(terminal))


async def test_draws_nothing_when_the_stream_is_not_a_terminal() -> None:
    """Piped or logged output never sees the line."""
    stream = io.StringIO()

    async with job("quiet", 0, store=MemoryStore(), triggers=[Progress(stream=stream, delay=0)]):
        await asyncio.sleep(0.05)

    assert "" == stream.getvalue()


@pytest.mark.parametrize(
    ("setting", "stream", "shown"),
    [("0", Terminal(), False), ("1", io.StringIO(), True)],
    ids=["off-on-a-terminal", "on-off-a-terminal"],
)
async def test_the_environment_variable_decides_first(
    monkeypatch: pytest.MonkeyPatch, setting: str, stream: io.StringIO, shown: bool
) -> None:
    """RESUMABLE_PROGRESS=0 silences the line on a terminal; =1 draws it anywhere."""
    monkeypatch.setenv(ENV, setting)
    progress = Progress(stream=stream, interval=0.01, delay=0)

    async with job("env", 0, store=MemoryStore(), triggers=[progress]) as j:
        j.advance(1)
        if shown:
            await wait_until(lambda: "env: 1 items" in stream.getvalue())
        else:
            await asyncio.sleep(0.05)

    assert shown == ("env: 1 items" in stream.getvalue())


async def test_a_short_job_ends_before_the_delay_and_shows_nothing() -> None:
    """The first draw waits *delay* seconds, so quick jobs leave the terminal alone."""
    terminal = Terminal()

    async with job("short", 0, store=MemoryStore(), triggers=[Progress(stream=terminal)]) as j:
        j.advance(1)

    assert "" == terminal.getvalue()


async def test_a_broken_terminal_does_not_break_the_job() -> None:
    """A stream that fails to write is given up on; the job finishes as usual."""
    progress = Progress(stream=BrokenTerminal(), interval=0.01, delay=0)

    async with job("broken", 0, store=MemoryStore(), triggers=[progress]) as j:
        j.advance(1)
        await asyncio.sleep(0.05)

    assert j.outcome is not None
    assert ("completed", 1) == (j.outcome.status, j.outcome.cursor)


@pytest.mark.parametrize(("interval", "delay"), [(0, 1), (1, -1)])
def test_rejects_nonsense_timings(interval: float, delay: float) -> None:
    """A zero interval or a negative delay is a mistake, said at construction."""
    with pytest.raises(ValueError, match="seconds"):
        Progress(interval=interval, delay=delay)
