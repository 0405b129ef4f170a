"""One subject of the hot-path benchmark, run for N items (for `instructions.py`).

    python benchmarks/hot_path.py SUBJECT N

SUBJECT: ``bare`` (an async generator drained by ``async for``), ``resumable`` (the same
generator under ``@resumable``, MemoryStore, no timer, no triggers) or ``advance`` (a loop
calling ``j.advance`` in ``async with job(...)``). Prints nothing: it exists to be counted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from resumable import MemoryStore, job, resumable


async def numbers(n: int, start: int = 0) -> AsyncIterator[int]:
    """The job's work: nothing but yielding cursors."""
    for i in range(start, n):
        yield i + 1


async def bare(n: int) -> None:
    """The floor: the same generator, drained without resumable."""
    async for _ in numbers(n):
        pass


async def decorated(n: int) -> None:
    """The generator under ``@resumable``."""

    @resumable(key="hot", store=MemoryStore(), interval=None, triggers=[])
    async def hot(*, cursor: int = 0) -> AsyncIterator[int]:
        async for value in numbers(n, cursor):
            yield value

    await hot()


async def advancing(n: int) -> None:
    """The context-manager form: one ``advance`` per item."""
    async with job("hot", 0, store=MemoryStore(), interval=None, triggers=[]) as j:
        for i in range(n):
            j.advance(i + 1)


SUBJECTS = {"bare": bare, "resumable": decorated, "advance": advancing}


def main() -> None:
    """Run one subject for N items."""
    subject, n = sys.argv[1], int(sys.argv[2])
    asyncio.run(SUBJECTS[subject](n))


if __name__ == "__main__":
    main()
