"""One subject of the instruction-count benchmark, run for N items (for `instructions.py`).

    python benchmarks/hot_path.py SUBJECT N

Each subject is one of `shapes.py`'s runs, the same the wall-clock benchmarks time, on a
`MemoryStore` with no timer and no triggers (nothing that depends on the clock):

- ``bare``: `count_up` drained by ``async for`` (the floor); ``resumable``: `count_up`
  under ``@resumable``; ``advance``: its cursors fed to ``j.advance`` in ``async with job()``.
- ``list``: `produce` drained by ``async for``, its items appended to a list (the floor with
  outputs); ``push``: `produce` under ``@resumable``, its items pushed through the outbox
  into a sink in memory.
- ``plain``: `count_up_plain` drained by ``for`` (the plain floor); ``plain-resumable``:
  `count_up_plain` under ``@resumable``; ``plain-advance``: its cursors fed to ``j.advance``
  in ``with job()``.

It prints nothing (it exists to be counted) and fails if a run did not produce N items.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import shapes

from resumable import MemoryStore


async def _resumable(n: int) -> int:
    return (await shapes.decorated(MemoryStore(), **shapes.QUIET)(n)).cursor


async def _push(n: int) -> int:
    sink = shapes.KeepingSink()
    await shapes.pushing(MemoryStore(), sink, **shapes.QUIET)(n)
    return len(sink.items)


async def _list(n: int) -> int:
    return len(await shapes.drain_into_list(n))


SUBJECTS: dict[str, Callable[[int], int]] = {
    "bare": lambda n: asyncio.run(shapes.drain(n)),
    "resumable": lambda n: asyncio.run(_resumable(n)),
    "advance": lambda n: asyncio.run(shapes.advancing(n, MemoryStore(), **shapes.QUIET)),
    "list": lambda n: asyncio.run(_list(n)),
    "push": lambda n: asyncio.run(_push(n)),
    "plain": shapes.drain_plain,
    "plain-resumable": lambda n: shapes.decorated_plain(MemoryStore(), **shapes.QUIET)(n).cursor,
    "plain-advance": lambda n: shapes.advancing_plain(n, MemoryStore(), **shapes.QUIET),
}


def main() -> None:
    """Run one subject for N items."""
    subject, n = sys.argv[1], int(sys.argv[2])
    produced = SUBJECTS[subject](n)
    if produced != n:
        sys.exit(f"{subject} produced {produced} of {n} items")


if __name__ == "__main__":
    main()
