"""A job run in a child process by the preemption tests.

Usage: python preemption_child.py STATE_DIR LOG PROVIDER URL [N]

Processes items from the saved cursor on (up to N, default: without end), appending each
item's number to LOG before yielding the cursor after it, with a FileStore in STATE_DIR and
no periodic saves: only a preemption notice (or the end) saves. `PreemptionNotice` watches
PROVIDER's metadata service at URL. Prints ``START <cursor>`` at the start, ``FINALLY`` when
the generator is closed, and then hangs there, as cleanup slower than the notice would: the
test kills the process at the notice's deadline.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

from resumable import FileStore, resumable
from resumable.cloud import PreemptionNotice


def main() -> None:
    state_dir, log_path, provider, url = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else None
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    notice = PreemptionNotice(endpoints={provider: url}, poll_interval=0.05)

    @resumable(key="spot", store=FileStore(state_dir), interval=None, triggers=[notice])
    async def work(*, cursor: int = 0) -> AsyncIterator[int]:
        print("START", cursor, flush=True)
        i = cursor
        try:
            while n is None or i < n:
                os.write(log, f"{i}\n".encode())
                await asyncio.sleep(0.001)
                i += 1
                yield i
        finally:
            if n is None:  # the run that is preempted: its cleanup outlives the deadline
                print("FINALLY", flush=True)
                await asyncio.Event().wait()

    outcome = asyncio.run(work())
    print("OUTCOME", outcome.status, outcome.cursor, flush=True)


if __name__ == "__main__":
    main()
