"""Crawlee crawlers whose requests take effect exactly once: `exactly_once`.

::

    from resumable.crawlee import exactly_once

    await exactly_once(crawler, key="shop").run(["https://shop.example/"])

The handlers are the crawler's own, written for Crawlee alone. What a request's handler does
through its context (``push_data`` to any dataset, ``add_requests`` / ``enqueue_links``,
key-value store changes, and `resumable.apify.charge`) takes effect exactly once, with the
crawler's own persisted request queue and its full concurrency, across SIGKILL at any
moment, migrations, aborts, SIGTERM and preemption notices.

How: a journal, kept as the cursor of a `resumable.job` in the job's store.

1. A handler returns. The requests it added go into the queue (the queue keeps one request
   per unique key, so adding them twice is harmless). What else it did waits.
2. Group commit: one store write of the journal takes every request that finished while the
   previous write was made: their unique keys, their items per dataset (the outbox
   protocol: each dataset's count at the write and the items to follow it), their key-value
   store changes and their charges.
3. Delivery, once the write has landed: the items to their datasets at the recorded
   positions (read back first when a delivery was cut short), the values set, the charges
   made with deterministic idempotency keys.
4. The crawler marks the requests handled in the queue; the next write leaves them out.

What a crash at each point leaves:

- before 2: the request is not in the journal, nothing of it was delivered, and the queue
  still holds it: the next run handles it again (its added requests are already queued).
- between 2 and 4: the journal holds it. The next run delivers what the journal holds
  pending, reading each dataset back to count what landed, and reconciling charges with the
  run's charged event counts; when the queue hands the request out again, it is marked
  handled from the journal, never handled again.
- after 4: the next run finds it handled in the queue and drops it from the journal.

The journal holds only the requests committed and not yet marked handled, and what of theirs
is still to deliver: after a full crawl it is empty but for the counts of requests finished
and failed, which the crawler's statistics start from in the next run, so that
``max_requests_per_crawl`` holds across restarts.
"""

from __future__ import annotations

try:
    import apify  # noqa: F401 - only to tell a missing extra apart from a broken install
    import crawlee  # noqa: F401
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "resumable.crawlee needs Crawlee and the Apify SDK, which are not installed: "
        'pip install "resumable-jobs[apify]" "crawlee[parsel]" (or the crawler you use, '
        'e.g. "crawlee[beautifulsoup]")'
    ) from _missing

from resumable.crawlee._exactly_once import ExactlyOnce, exactly_once

__all__ = ["ExactlyOnce", "exactly_once"]
