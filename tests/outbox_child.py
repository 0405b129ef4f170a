"""A job with an outbox, run in a child process by the exactly-once crash tests.

Usage: python outbox_child.py STATE_DIR SINK_FILE N EVERY [KILL_AT]

With OUTBOX_CHILD_CONCURRENT=1 in the environment the items run through
``concurrently(..., limit=8, out=out)`` with random worker delays instead.

Pushes one item (``{"n": i}``) per cursor for items 0..N-1 into a `JsonLinesSink`, with a
`FileStore` in STATE_DIR and a save every EVERY cursors. Prints READY once it works.

KILL_AT (``STEP:NTH``) SIGKILLs the process itself at the NTH time it reaches STEP of the
commit protocol: ``before-record`` (a record write that carries outputs, before it lands),
``after-record`` (once it has landed, before the delivery), ``mid-delivery`` (between
two items of a delivery, the second one torn halfway), ``after-delivery`` (the items are in
the sink, before anything else). ``before-mark`` is ``before-record`` past the first
delivery: the record that would say the items were delivered never lands.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from resumable import FileStore, JsonLinesSink, Outbox, concurrently, resumable
from resumable._stores import Guard


class Points:
    """Counts the steps of the commit protocol and kills the process at the chosen one."""

    def __init__(self, spec: str | None) -> None:
        step, _, nth = (spec or ":").partition(":")
        self.step, self.nth = step, int(nth or 0)
        self.seen: dict[str, int] = {}

    def reached(self, step: str) -> bool:
        self.seen[step] = self.seen.get(step, 0) + 1
        return step == self.step and self.seen[step] == self.nth

    def at(self, step: str) -> None:
        if self.reached(step):
            os.kill(os.getpid(), signal.SIGKILL)


class KillingStore(FileStore):
    def __init__(self, directory: str, points: Points) -> None:
        super().__init__(directory)
        self.points = points

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        carries = b'"pending":[{' in data
        delivered = json.loads(data).get("outbox", {}).get("delivered", 0)
        if carries or delivered:
            self.points.at("before-mark" if delivered else "before-record")
        await super().save(key, data, guard=guard)
        if carries:
            self.points.at("after-record")


class KillingSink(JsonLinesSink):
    def __init__(self, path: str, points: Points) -> None:
        super().__init__(path)
        self.points = points

    async def append(self, items: Sequence[Any], start: int) -> None:
        if len(items) > 1 and self.points.reached("mid-delivery"):
            await super().append(items[:1], start)
            torn = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.write(torn, json.dumps(items[1]).encode()[:3])  # half a line, as a crash leaves it
            os.fsync(torn)
            os.kill(os.getpid(), signal.SIGKILL)
        await super().append(items, start)
        self.points.at("after-delivery")


async def work(i: int) -> dict[str, int]:
    await asyncio.sleep(random.random() / 200)  # uneven: items finish out of order
    return {"n": i}


def main() -> None:
    state_dir, sink_file, n, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    points = Points(sys.argv[5] if len(sys.argv) > 5 else None)

    @resumable(
        key="outbox-child",
        store=KillingStore(state_dir, points),
        sink=KillingSink(sink_file, points),
        every=every,
        interval=None,
        triggers=[],
    )
    async def export(*, cursor: int = 0, out: Outbox[dict[str, int]]) -> AsyncIterator[int]:
        print("START", cursor, flush=True)
        if os.environ.get("OUTBOX_CHILD_CONCURRENT"):
            print("READY", flush=True)
            async for mark in concurrently(work, range(n), start=cursor, limit=8, out=out):
                yield mark
            return
        for i in range(cursor, n):
            out.push({"n": i})
            if i == cursor:
                print("READY", flush=True)
            await asyncio.sleep(0.001)  # some work, so that saves land between items
            yield i + 1

    outcome = asyncio.run(export())
    print("OUTCOME", json.dumps({"cursor": outcome.cursor, "outputs": outcome.outputs}))


if __name__ == "__main__":
    main()
