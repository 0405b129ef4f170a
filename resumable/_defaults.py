"""What a job gets from its surroundings when it leaves an option to them.

This is the only module that knows the environment's defaults: inside ``async with Actor:``
the Actor's key-value store and the platform's events, anywhere else a `FileStore` in
``.resumable`` and a timer. The core never imports an integration; this module looks for
the Apify SDK only when the process has imported it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import attrs

from resumable._options import Interval, JobOptions
from resumable._progress import Progress
from resumable._sink import JsonLinesSink, Sink
from resumable._stores import FileStore, Store
from resumable._timing import Timing
from resumable._timing import default as default_timing
from resumable._triggers import DrivesPeriodicSaves, Signals, Trigger

DEFAULT_INTERVAL = 10.0
"""Seconds between periodic saves when no platform event drives them."""

DEFAULT_DIRECTORY = ".resumable"
"""Where the default `FileStore` keeps its records, relative to the directory at start."""


@attrs.frozen
class Surroundings:
    """The store, triggers, interval and timing a run actually uses."""

    store: Store
    triggers: tuple[Trigger, ...]
    interval: float | None
    timing: Timing


def _actor_defaults() -> tuple[Store, list[Trigger]] | None:
    if "apify" not in sys.modules:
        return None
    integration: Any = importlib.import_module("resumable.apify")
    defaults: tuple[Store, list[Trigger]] | None = integration.actor_defaults()
    return defaults


def default_store(store: Store | None) -> Store:
    """Return *store*, or the store a job gets where it runs."""
    if store is not None:
        return store
    actor = _actor_defaults()
    return actor[0] if actor is not None else FileStore(DEFAULT_DIRECTORY)


def default_sink(key: str, sink: Sink | None) -> Sink:
    """Return *sink*, or where the outputs of *key* go where the job runs.

    Inside ``async with Actor:``, the Actor's default dataset; elsewhere
    ``.resumable/<key>.jsonl``.
    """
    if sink is not None:
        return sink
    if "apify" in sys.modules:
        integration: Any = importlib.import_module("resumable.apify")
        if integration.actor_is_running():
            dataset: Sink = integration.DatasetSink()
            return dataset
    return JsonLinesSink(f"{DEFAULT_DIRECTORY}/{key}.jsonl")


def surroundings(options: JobOptions) -> Surroundings:
    """Fill in what *options* left to the environment, at the start of a run."""
    actor = _actor_defaults() if options.store is None or options.triggers is None else None
    store = options.store
    if store is None:
        store = actor[0] if actor is not None else FileStore(DEFAULT_DIRECTORY)
    if options.triggers is None:
        # Inside an Actor the platform's status message shows progress; elsewhere a terminal.
        triggers: tuple[Trigger, ...] = (
            Signals(),
            *(actor[1] if actor is not None else [Progress()]),
        )
    else:
        triggers = options.triggers
    timing = options.timing if options.timing is not None else default_timing()
    return Surroundings(store, triggers, _interval(options.interval, triggers), timing)


def _interval(interval: Interval, triggers: tuple[Trigger, ...]) -> float | None:
    if interval is not ...:
        return interval
    driven = any(isinstance(t, DrivesPeriodicSaves) and t.drives_periodic_saves for t in triggers)
    return None if driven else DEFAULT_INTERVAL
