"""What a job uses inside a running Actor when it leaves its store and triggers unset."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apify.log import ActorLogFormatter

from resumable.apify._events import ApifyEvents
from resumable.apify._sdk import actor_is_running
from resumable.apify._status import ApifyStatus
from resumable.apify._store import ApifyStore

if TYPE_CHECKING:
    from resumable._triggers import Trigger

__all__ = ["actor_defaults"]


def actor_defaults() -> tuple[ApifyStore, list[Trigger]] | None:
    """Return the store and triggers a job uses by default inside a running Actor, else ``None``.

    The engine calls this (only when ``apify`` was imported) to resolve ``store=None`` and
    ``triggers=None``; it adds `Signals` itself.
    """
    if not actor_is_running():
        return None
    _log_like_the_actor()
    return ApifyStore(), [ApifyEvents(), ApifyStatus()]


def _log_like_the_actor() -> None:
    """Show resumable's log lines in the Actor's log, formatted as the SDK's own.

    The SDK configures only its own loggers, so without this a job's "resuming from ..."
    lines would go nowhere. Logging the user configured is left alone.
    """
    ours = logging.getLogger("resumable")
    if ours.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(ActorLogFormatter())
    ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)
    ours.propagate = False
