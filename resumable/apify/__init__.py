"""Apify Actors: cursors in the Actor's key-value store, saves on the platform's events.

Inside ``async with Actor:`` a job needs nothing from this module: with ``store=None`` and
``triggers=None`` it uses `ApifyStore` on the Actor's default key-value store, and
`Signals`, `ApifyEvents` and `ApifyStatus` as triggers. Import the names to configure them;
``triggers=`` replaces the defaults, so list every trigger you still want::

    from resumable import Signals, resumable
    from resumable.apify import ApifyEvents, ApifyStatus, ApifyStore

    @resumable(
        store=ApifyStore(name="my-state"),
        triggers=[Signals(), ApifyEvents(safety_margin=5), ApifyStatus()],
    )
    async def crawl(*, cursor: int = 0): ...

Persistence policy inside an Actor: the job claims its key when it starts (one write), saves
on every ``persistState`` event the platform emits (once a minute by default, and only when
the cursor moved), on ``migrating`` and ``aborting``, and once at the end; there is no timer
of its own unless ``interval=`` is given. Key-value store writes cost money on the platform;
Crawlee emits ``persistState`` itself too (at the end of each ``crawler.run``), and each one
that finds the cursor moved is a write.
"""

from __future__ import annotations

from resumable._distribution import install_hint

try:
    import apify  # noqa: F401 - only to tell a missing extra apart from a broken install
    import crawlee  # noqa: F401
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"resumable.apify needs the Apify SDK, which is not installed: {install_hint('apify')}"
    ) from _missing

from resumable.apify._charges import charge
from resumable.apify._dataset_sink import DatasetSink
from resumable.apify._defaults import actor_defaults
from resumable.apify._events import ApifyEvents
from resumable.apify._sdk import actor_is_running
from resumable.apify._status import ApifyStatus
from resumable.apify._store import ApifyStore

__all__ = [
    "ApifyEvents",
    "ApifyStatus",
    "ApifyStore",
    "DatasetSink",
    "actor_defaults",
    "actor_is_running",
    "charge",
]
