"""Every benchmark `run.py` runs, in the report's order, with its sizes for each preset.

A section is a benchmark module's ``run`` (JSON-able figures) and ``table`` (markdown),
a heading and a sentence for the report, optionally a plot panel and the targets its
figures are held to. To add a benchmark, give its module those two functions and add a
`Section` below: ``--only``, the report, the plot, ``--docs`` and the smoke tests
(``tests/test_benchmarks_smoke.py`` lists the sections it runs) take it from here.

Presets: ``smoke`` is the smallest run of every code path (what the tests run; its figures
mean nothing), ``quick`` a rough pass, ``default`` what the docs show, ``full`` more of each.
A preset of ``None`` leaves the section out of that run.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import concurrency
import cost
import crawler
import exports
import fleet
import instructions
import migration
import outputs
import plot
import preemption
import scale
import stores
import sync
import targets

from tests.servers import missing_servers

PRESETS = ("smoke", "quick", "default", "full")


@dataclass(frozen=True)
class Section:
    """One benchmark as the runner sees it."""

    name: str
    heading: str
    about: str
    run: Callable[[dict[str, Any]], Any]
    table: Callable[[Any], str]
    sizes: dict[str, dict[str, Any] | None]
    painter: plot.Painter | None = None
    checks: Callable[[Any], list[targets.Check]] | None = None
    missing: Callable[[], str | None] = lambda: None
    """What this machine lacks to run the section (``None``: nothing)."""


def _cost(sizes: dict[str, Any]) -> Any:
    # DBOS is a comparison, not a dependency: without it the other subjects still run.
    dbos = sizes["dbos_items"]
    if importlib.util.find_spec("dbos") is None:
        print(
            "  dbos is not installed: no DBOS subject (pip install -e '.[bench]')", file=sys.stderr
        )
        dbos = None
    return cost.run(sizes["items"], sizes["repeats"], dbos)


def _valgrind() -> str | None:
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (Debian: apt-get install valgrind)"
    return None


def _sizes(sizes: dict[str, Any]) -> Any:
    return {
        store: {str(size): r for size, r in by_size.items()}
        for store, by_size in scale.sizes(sizes["saves"]).items()
    }


def _sizes_table(results: dict[str, Any]) -> str:
    return scale.sizes_table(
        {store: {int(size): r for size, r in by_size.items()} for store, by_size in results.items()}
    )


SECTIONS = [
    Section(
        "cost",
        "Cost per item: async generators",
        "One `int` cursor per item and no work, so only the bookkeeping shows; every subject "
        "drives the same generator, its own start and end included (`benchmarks/cost.py`).",
        _cost,
        cost.table,
        {
            "smoke": {"items": 2_000, "repeats": 1, "dbos_items": 10},
            "quick": {"items": 200_000, "repeats": 3, "dbos_items": 100},
            "default": {"items": 1_000_000, "repeats": 7, "dbos_items": 1_000},
            "full": {"items": 1_000_000, "repeats": 15, "dbos_items": 2_000},
        },
        plot.per_item("Cost per item, async generators"),
        targets.cost,
    ),
    Section(
        "outputs",
        "Cost per item with outputs",
        "One small dict per cursor: `out.push` + yield against the same generator appending "
        "to a list (`benchmarks/outputs.py`).",
        lambda s: outputs.run(s["items"], s["repeats"]),
        outputs.table,
        {
            "smoke": {"items": 2_000, "repeats": 1},
            "quick": {"items": 100_000, "repeats": 3},
            "default": {"items": 1_000_000, "repeats": 3},
            "full": {"items": 1_000_000, "repeats": 7},
        },
        plot.per_item("Cost per item with outputs"),
        targets.outputs,
    ),
    Section(
        "exports",
        "A CSV file exported to JSON Lines",
        "Each row of a CSV file pushed through the outbox into `JsonLinesSink`, against the "
        "same generator writing the file itself with `json.dumps` per row "
        "(`benchmarks/exports.py`).",
        lambda s: exports.run(s["rows"], s["repeats"]),
        exports.table,
        {
            "smoke": {"rows": 2_000, "repeats": 1},
            "quick": {"rows": 50_000, "repeats": 3},
            "default": {"rows": 300_000, "repeats": 3},
            "full": {"rows": 1_000_000, "repeats": 7},
        },
        plot.per_item("A CSV file exported to JSON Lines"),
        targets.exports,
    ),
    Section(
        "sync",
        "Cost per yield: plain generators",
        "The job's loop runs in a thread of its own; the generator stays in the caller's "
        "thread. The whole run includes the job's start and end (the claim, the loop's "
        "thread, the final save); the loop alone is the generator's first item to its last "
        "(`benchmarks/sync.py`).",
        lambda s: sync.run(s["items"], s["repeats"], s["memory_items"]),
        sync.table,
        {
            "smoke": {"items": 2_000, "repeats": 1, "memory_items": 20_000},
            "quick": {"items": 200_000, "repeats": 3, "memory_items": 1_000_000},
            "default": {"items": 1_000_000, "repeats": 5, "memory_items": 10_000_000},
            "full": {"items": 1_000_000, "repeats": 9, "memory_items": 10_000_000},
        },
        plot.per_item("Cost per yield, plain generators (whole run)", "whole"),
    ),
    Section(
        "instructions",
        "Instructions per item",
        "The same runs as above, counted by `valgrind --tool=callgrind` (N and 2N items, "
        "the difference over N) on `MemoryStore` with no timer and no triggers: a count does "
        "not move with the machine's load (`benchmarks/instructions.py`). An instruction is "
        "not a nanosecond: compare these between versions of the same path.",
        lambda s: instructions.run(s["items"], only=s.get("only")),
        instructions.table,
        {
            "smoke": {"items": 200, "only": ["plain"]},
            "quick": None,
            "default": {"items": 5_000},
            "full": {"items": 20_000},
        },
        missing=_valgrind,
    ),
    Section(
        "concurrency",
        "`concurrently` against a bounded TaskGroup",
        "The same no-op worker over the same items with the same limit "
        "(`benchmarks/concurrency.py`).",
        lambda s: concurrency.run(s["items"], s["repeats"]),
        concurrency.table,
        {
            "smoke": {"items": 1_000, "repeats": 1},
            "quick": {"items": 20_000, "repeats": 3},
            "default": {"items": 200_000, "repeats": 5},
            "full": {"items": 200_000, "repeats": 11},
        },
        checks=targets.concurrency,
    ),
    Section(
        "migration",
        "Time to safety on `migrating`",
        "From the message leaving the stand-in to the cursor being durable; the breakdown "
        "is in ms since the message left (`benchmarks/migration.py`).",
        lambda s: migration.run(s["trials"], workloads=s.get("workloads"), cap=s["cap"]),
        migration.table,
        {
            "smoke": {"trials": 1, "cap": 1.0, "workloads": ["idle"]},
            "quick": {"trials": 3, "cap": 1.0},
            "default": {"trials": 20, "cap": 2.0},
            "full": {"trials": 40, "cap": 3.0},
        },
        plot.migration,
        targets.migrations,
    ),
    Section(
        "preemption",
        "Spot preemption notices",
        "What `PreemptionNotice` costs off a cloud (its endpoints refuse or drop the "
        "connection), and how fast a notice from each provider's stand-in becomes a durable "
        "cursor on `FileStore` (`benchmarks/preemption.py`).",
        lambda s: preemption.run(s["trials"], s["startup_trials"], s["poll_interval"]),
        preemption.table,
        {
            "smoke": {"trials": 1, "startup_trials": 2, "poll_interval": 0.05},
            "quick": {"trials": 3, "startup_trials": 10, "poll_interval": 0.2},
            "default": {"trials": 10, "startup_trials": 100, "poll_interval": None},
            "full": {"trials": 20, "startup_trials": 200, "poll_interval": None},
        },
    ),
    Section(
        "stores",
        "Shared stores: guarded save and load",
        "The write every checkpoint makes (read the record, check its owner, write) and a "
        "load, alternated between the stores on a `redis-server` and a PostgreSQL started "
        "on 127.0.0.1 with their default durability (`benchmarks/stores.py`).",
        lambda s: stores.run(s["operations"]),
        stores.table,
        {
            "smoke": {"operations": 5},
            "quick": {"operations": 30},
            "default": {"operations": 500},
            "full": {"operations": 2_000},
        },
        plot.stores,
        missing=missing_servers,
    ),
    Section(
        "fleet",
        "A fleet of worker processes on one shared store",
        "Each worker runs its share of the shards, a job per shard whose items wait on I/O; "
        "the clock starts once every worker is connected (`benchmarks/fleet.py`).",
        lambda s: fleet.run(s["shards"], s["items"], s["work"], s["workers"]),
        fleet.table,
        {
            "smoke": {"shards": 2, "items": 5, "work": 0.002, "workers": "1,2"},
            "quick": {"shards": 4, "items": 20, "work": 0.002, "workers": "1,2"},
            "default": {"shards": 16, "items": 200, "work": 0.002, "workers": "1,2,4,8"},
            "full": {"shards": 32, "items": 400, "work": 0.002, "workers": "1,2,4,8"},
        },
        plot.fleet,
        missing=missing_servers,
    ),
    Section(
        "crawler",
        "A Crawlee crawler, exactly once per request",
        "The same crawler (10 requests in flight, the Actor's persisted queue, local storage) "
        "over a shop served on 127.0.0.1, alone and under `exactly_once`, in alternating "
        "rounds; then `migrating` sent with 10 requests in flight, to the run having "
        "committed what finished and parked (`benchmarks/crawler.py`).",
        lambda s: crawler.run(s["rounds"], s["trials"]),
        crawler.table,
        {
            "smoke": {"rounds": 1, "trials": 1},
            "quick": {"rounds": 2, "trials": 2},
            "default": {"rounds": 5, "trials": 10},
            "full": {"rounds": 9, "trials": 20},
        },
        checks=targets.crawler,
    ),
    Section(
        "scale",
        "A long run",
        "One job on `FileStore` (`every=100_000`, `interval=1`), sampled every million "
        "yields (`benchmarks/scale.py`).",
        lambda s: scale.long_run(s["yields"]),
        scale.long_run_table,
        {
            "smoke": {"yields": 200_000},
            "quick": {"yields": 2_000_000},
            "default": {"yields": 10_000_000},
            "full": {"yields": 10_000_000},
        },
        plot.scale,
        targets.scale,
    ),
    Section(
        "sizes",
        "Save and load time by cursor size",
        "A save is `Job.save()` (serialize, check the owner, write; fsync on the file "
        "stores), a load what a job's start does before its claim (`benchmarks/scale.py`).",
        _sizes,
        _sizes_table,
        {
            "smoke": {"saves": 2},
            "quick": {"saves": 10},
            "default": {"saves": 30},
            "full": {"saves": 100},
        },
        plot.sizes,
    ),
]

BY_NAME = {section.name: section for section in SECTIONS}
