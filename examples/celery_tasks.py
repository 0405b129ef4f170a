"""A Celery task that runs a resumable job over one shard: a redelivered task resumes.

    celery -A examples.celery_tasks worker --pool solo    # as many workers as you like
    python examples/celery_tasks.py [--shards N]          # enqueue N shards, wait for them

A task is acknowledged only once it returns (``acks_late``), and a worker that dies in the
middle of one (SIGKILL, out of memory, a lost machine) has its task delivered again
(``reject_on_worker_lost``; on a Redis broker, once the visibility timeout has passed or
a worker starts). Celery alone would run the task again from its first item; here the
redelivered task continues from the shard's saved cursor, in whichever worker gets it.

Broker and store are Redis: ``CELERY_BROKER_URL`` (also the result backend) and
``RESUMABLE_STORE_URL``, both ``redis://127.0.0.1:6379/0`` by default;
``CELERY_VISIBILITY_TIMEOUT`` (seconds, default 3600) is how long Redis waits before it
hands an unacknowledged task to another worker. It must be longer than the longest task:
a task still running then is delivered a second time, the second run takes the shard over
and the first one stops with `StaleWriterError` (fencing), which is safe but wasteful.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from typing import Any

from celery import Celery

from resumable import StaleWriterError, resumable
from resumable.redis import RedisStore

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
STORE = RedisStore(os.environ.get("RESUMABLE_STORE_URL", "redis://127.0.0.1:6379/0"))
ITEMS = 200
WORK = 0.02  # seconds per item

# [docs: celery]
app = Celery("celery_tasks", broker=BROKER, backend=BROKER)
app.conf.update(
    task_acks_late=True,  # acknowledge a task when it returns, not when it starts
    task_reject_on_worker_lost=True,  # a worker that died: deliver its task again
    worker_prefetch_multiplier=1,  # a worker holds no task it has not started
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": 1,  # look for tasks of dead workers every second...
        "unacked_restore_throttle": 1,  # ...not every tenth look
    },
)


# Celery owns the worker's signals (a warm shutdown lets the task finish): no signal
# triggers. A save every 10 items bounds what a killed worker's successor repeats.
@resumable(key=lambda shard, items: f"export-{shard}", store=STORE, every=10, triggers=[])
def export(shard: int, items: int, *, cursor: int = 0) -> Iterator[int]:
    """Process the shard's items from *cursor* on; the cursor is the first item not done."""
    for item in range(cursor, items):
        time.sleep(WORK)  # the work for one item of the shard
        yield item + 1


@app.task(name="export_shard", acks_late=True, reject_on_worker_lost=True)
def export_shard(shard: int, items: int = ITEMS) -> dict[str, Any]:
    """Run (or resume) one shard's job; what it returns says where it started."""
    try:
        outcome = export(shard, items)
    except StaleWriterError:
        # Delivered twice (the visibility timeout passed): the newer run has the shard.
        return {"shard": shard, "status": "taken over"}
    return {
        "shard": shard,
        "status": outcome.status,
        "resumed_from": outcome.resumed_from,
        "cursor": outcome.cursor,
        "yields": outcome.yields,
    }


# [docs: end]


def main() -> None:
    """Start every shard afresh, enqueue one task each, print what each task reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    for shard in range(args.shards):
        export.reset(shard, args.items)  # each run of this example starts over
    results = [export_shard.delay(shard, args.items) for shard in range(args.shards)]
    for result in results:
        report = result.get(timeout=args.timeout)
        print(
            f"shard {report['shard']}: {report['status']} at item {report.get('cursor')}, "
            f"resumed from {report.get('resumed_from')}, {report.get('yields')} item(s) by "
            "the last delivery",
            flush=True,
        )
    print(f"{args.shards} shard(s) done")


if __name__ == "__main__":
    main()
