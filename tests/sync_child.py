"""A plain-generator job run in a child process by the sync signal and crash tests.

Usage: python sync_child.py STATE_DIR LOG N [EVERY] [--stuck] [--outbox] [--long-grace]

Processes items 0..N-1 in the main thread, appending each item's number to LOG before
yielding the cursor after it, with a FileStore in STATE_DIR. Prints READY once it is working,
FINALLY when the generator is closed, and the Outcome as JSON at the end. With --stuck, the
item after READY prints STUCK and takes a minute (a SIGTERM does not cut that short), and the
job's log goes to stdout. With --outbox, each item is also pushed into the job's outbox,
delivered to STATE_DIR/out.jsonl. With --long-grace, the work in flight gets 30 s, not 0.5 s,
to reach its next yield after a stop.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from resumable import FileStore, JsonLinesSink, Outbox, resumable


def main() -> None:
    state_dir, log_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    numbers = [a for a in sys.argv[4:] if not a.startswith("--")]
    every = int(numbers[0]) if numbers else None
    stuck = "--stuck" in sys.argv
    sink = JsonLinesSink(f"{state_dir}/out.jsonl") if "--outbox" in sys.argv else None
    if stuck:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def items(cursor: int, push: Callable[[int], None] | None) -> Iterator[int]:
        print("START", cursor, flush=True)
        try:
            for i in range(cursor, n):
                os.write(log, f"{i}\n".encode())
                if push is not None:
                    push(i)
                if i == cursor + 3:
                    print("READY", flush=True)
                if stuck and i == cursor + 4:
                    print("STUCK", flush=True)
                    time.sleep(60)
                time.sleep(0.0005)
                yield i + 1
        finally:
            print("FINALLY", flush=True)

    grace = 30.0 if "--long-grace" in sys.argv else 0.5
    options: dict[str, Any] = {"every": every, "interval": 0.05, "grace": grace}
    if sink is None:

        @resumable(key="child", store=FileStore(state_dir), **options)
        def work(*, cursor: int = 0) -> Iterator[int]:
            yield from items(cursor, None)

    else:

        @resumable(key="child", store=FileStore(state_dir), sink=sink, **options)
        def work(*, cursor: int = 0, out: Outbox[int] = Outbox.GIVEN) -> Iterator[int]:
            yield from items(cursor, out.push)

    outcome = work()
    print("OUTCOME", json.dumps({"status": outcome.status, "cursor": outcome.cursor}), flush=True)


if __name__ == "__main__":
    main()
