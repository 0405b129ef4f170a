"""A job run in a child process by the signal and crash tests.

Usage: python child_job.py STATE_DIR LOG N [EVERY]

Processes items 0..N-1, appending each item's number to LOG before yielding the cursor
after it, with a FileStore in STATE_DIR. Prints READY once it is working, FINALLY when
the generator is closed, and the Outcome as JSON at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator

from resumable import FileStore, resumable


def main() -> None:
    state_dir, log_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    every = int(sys.argv[4]) if len(sys.argv) > 4 else None
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the run's story, on stderr
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @resumable(key="child", store=FileStore(state_dir), every=every, interval=0.05)
    async def work(*, cursor: int = 0) -> AsyncIterator[int]:
        print("START", cursor, flush=True)
        try:
            for i in range(cursor, n):
                os.write(log, f"{i}\n".encode())
                if i == cursor + 3:
                    print("READY", flush=True)
                await asyncio.sleep(0.0005)
                yield i + 1
        finally:
            print("FINALLY", flush=True)

    outcome = asyncio.run(work())
    print("OUTCOME", json.dumps({"status": outcome.status, "cursor": outcome.cursor}), flush=True)


if __name__ == "__main__":
    main()
