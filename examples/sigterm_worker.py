"""A worker that stops cleanly on SIGTERM and resumes where it stopped, as a pod or spot VM must.

    python examples/sigterm_worker.py

Kubernetes stops a pod with SIGTERM, then SIGKILL after ``terminationGracePeriodSeconds``
(30 s by default); spot and preemptible machines do much the same. resumable saves the
cursor on SIGTERM and sets ``j.stopping``: the worker finishes the task in flight, leaves
its loop (``finally`` blocks run) and the run ends ``"aborted"``. Here the worker sends
itself SIGTERM during task 12, then "the next pod" runs it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from resumable import FileStore, Outcome, job

STATE = FileStore(Path(tempfile.gettempdir()) / "resumable-examples" / "sigterm-worker")
TASKS = 30
EVICT_DURING = {12}  # the task during which the first pod is evicted


async def handle(task: int) -> None:
    """The work for one task: a call, a query, a file to convert."""
    if task in EVICT_DURING:
        EVICT_DURING.discard(task)
        # What the kubelet does when the pod is evicted or the deployment rolls.
        os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.02)


# [docs: worker]
async def worker() -> Outcome[int]:
    """Work through the tasks in order; the cursor is the first task not done yet."""
    async with job("sigterm-worker", cursor=0, store=STATE) as j:
        print(f"worker: starting at task {j.cursor} (resumed: {j.resumed})")
        try:
            for task in range(j.cursor, TASKS):
                if j.stopping:  # SIGTERM: take no new task
                    break
                await handle(task)
                j.advance(task + 1)
        finally:
            # Runs on SIGTERM too: close connections, flush buffers.
            print(f"worker: cleaning up after task {j.cursor - 1}")
    assert j.outcome is not None
    return j.outcome


# [docs: end]


async def main() -> None:
    """Run the worker, SIGTERM it mid-way, run it again."""
    await STATE.delete("sigterm-worker")  # each run of this example starts over
    first = await worker()
    print(f"first pod: {first.status} at task {first.cursor}")

    second = await worker()
    print(f"next pod: {second.status} at task {second.cursor}, resumed from {second.resumed_from}")
    assert first.status == "aborted"
    assert (second.status, second.resumed_from, second.cursor) == ("completed", first.cursor, TASKS)


if __name__ == "__main__":
    asyncio.run(main())
