"""What checkpointing costs per item, against a bare loop and the alternatives a user would pick.

Every subject runs the same async generator of cursors (`shapes.count_up`: one ``int`` per
item, no work in between, so only the bookkeeping shows; ``@resumable`` decorates that very
function) and is timed from the start of the run to
its end, its own start and end included (``@resumable`` claims its key and writes its final
state; ``use_state`` opens its record). What is *not* timed is the environment a subject
needs and would start once per process anyway: entering ``async with Actor:``, launching DBOS.

Subjects, in one process, alternated (the order flips every repetition):

- ``floor``: ``async for cursor in count_up(n)``, keeping the latest cursor in a local.
- ``@resumable`` with ``MemoryStore`` and with ``FileStore`` (default triggers and interval).
- ``@resumable`` inside ``async with Actor:`` with its defaults there (``ApifyStore`` on local
  storage, ``ApifyEvents``, ``ApifyStatus``).
- ``floor, a method call per item``: the floor, each cursor handed to a Python method that
  only keeps it: the least any ``advance(cursor)`` costs.
- ``job().advance()``: the context-manager form, one ``advance`` call per item.
- ``Actor.use_state()``: the SDK's auto-saved dict, updated per item (local storage, no purge).
- Crawlee's ``RecoverableState``: a pydantic model, updated per item, persisted on the SDK's
  events and once at the end.
- DBOS: a workflow with one step per item, on its embedded SQLite system database. It costs
  milliseconds per item, so it runs fewer items; the figure is per item all the same.

Run: ``python benchmarks/cost.py [--items N] [--repeats R] [--dbos-items M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import importlib
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shapes  # noqa: E402 - beside this file
from measuring import per_item, per_item_table, rounds  # noqa: E402

from resumable import FileStore, MemoryStore  # noqa: E402

ITEMS = 1_000_000
DBOS_ITEMS = 1_000

Subject = Callable[[int], Awaitable[float]]
"""Runs *n* items and returns the seconds the run took."""


async def floor(n: int) -> float:
    """A bare ``async for`` over the same generator, keeping the latest cursor."""
    began = time.perf_counter()
    latest = await shapes.drain(n)
    elapsed = time.perf_counter() - began
    assert latest == n
    return elapsed


def resumable_subject(make_store: Callable[[], Any]) -> Subject:
    """``@resumable`` over `count_up` with the store *make_store* returns (``None``: default)."""

    async def run(n: int) -> float:
        counted = shapes.decorated(make_store())
        await counted.reset(n)
        began = time.perf_counter()
        outcome = await counted(n)
        elapsed = time.perf_counter() - began
        assert outcome.cursor == n
        return elapsed

    return run


async def advance_loop(n: int) -> float:
    """``job()`` as a context manager, ``advance`` called once per cursor of `count_up`."""
    store = MemoryStore()
    began = time.perf_counter()
    persisted = await shapes.advancing(n, store)
    elapsed = time.perf_counter() - began
    assert persisted == n
    return elapsed


async def method_call_loop(n: int) -> float:
    """The floor plus one Python method call per cursor that keeps it (`shapes.Keeping`)."""
    began = time.perf_counter()
    latest = await shapes.advancing_nothing(n)
    elapsed = time.perf_counter() - began
    assert latest == n
    return elapsed


_actor_configuration: list[Any] = []
"""The one Configuration of every Actor this process enters: the service locator refuses a
second one, so the Actor's local storage is one directory for the whole process."""


def _dbos() -> Any:
    """The ``DBOS`` class, imported by name: a benchmark-only dependency, untyped here so
    that type-checking the benchmarks does not need it installed."""
    return importlib.import_module("dbos").DBOS


class Environment:
    """The heavy, once-per-process surroundings: an Actor on local storage, and DBOS."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._dbos_workflow: Callable[[int], Awaitable[int]] | None = None

    def actor(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A fresh ``async with Actor:`` on local storage, never purged."""
        from apify import Actor, Configuration  # noqa: PLC0415 - the SDK loads only when needed

        if not _actor_configuration:
            storage = tempfile.mkdtemp(prefix="resumable-bench-actor-")
            atexit.register(shutil.rmtree, storage, ignore_errors=True)
            _actor_configuration.append(Configuration(storage_dir=storage, purge_on_start=False))
        actor: contextlib.AbstractAsyncContextManager[Any] = Actor(
            configuration=_actor_configuration[0], exit_process=False, configure_logging=False
        )
        return actor

    def start_dbos(self) -> None:
        """Launch DBOS on an SQLite file in this environment's directory."""
        dbos = _dbos()
        dbos(
            config={
                "name": "resumable-bench",
                "system_database_url": f"sqlite:///{self.directory / 'dbos.sqlite'}",
                "log_level": "WARNING",
            }
        )

        async def step(item: int) -> int:
            return item + 1

        durable_step = dbos.step()(step)

        async def workflow(n: int) -> int:
            cursor = 0
            for item in range(n):
                cursor = await durable_step(item)
            return cursor

        self._dbos_workflow = dbos.workflow()(workflow)
        dbos.launch()

    def stop_dbos(self) -> None:
        """Shut DBOS down (its worker threads stop)."""
        if self._dbos_workflow is not None:
            _dbos().destroy(destroy_registry=True)
            self._dbos_workflow = None

    async def dbos(self, n: int) -> float:
        """One DBOS workflow of *n* steps."""
        assert self._dbos_workflow is not None
        began = time.perf_counter()
        cursor = await self._dbos_workflow(n)
        elapsed = time.perf_counter() - began
        assert cursor == n
        return elapsed

    async def use_state(self, n: int) -> float:
        """``Actor.use_state()``: the SDK's auto-saved dict, one assignment per item."""
        async with self.actor() as actor:
            began = time.perf_counter()
            state = await actor.use_state({"cursor": 0}, key="bench-use-state")
            state["cursor"] = 0
            async for cursor in shapes.count_up(n):
                state["cursor"] = cursor
            return time.perf_counter() - began

    async def recoverable_state(self, n: int) -> float:
        """Crawlee's ``RecoverableState`` of a pydantic model, one assignment per item."""
        from crawlee._utils.recoverable_state import RecoverableState  # noqa: PLC0415
        from pydantic import BaseModel  # noqa: PLC0415

        class Progress(BaseModel):
            cursor: int = 0

        async with self.actor() as actor:
            kvs = await actor.open_key_value_store()

            async def kvs_factory() -> Any:
                return kvs

            began = time.perf_counter()
            state = RecoverableState(
                default_state=Progress(),
                persist_state_key="bench-recoverable-state",
                persistence_enabled=True,
                persist_state_kvs_factory=kvs_factory,
                logger=logging.getLogger("bench"),
            )
            progress = await state.initialize()
            progress.cursor = 0
            async for cursor in shapes.count_up(n):
                progress.cursor = cursor
            await state.teardown()  # unhooks it and persists the final value
            return time.perf_counter() - began

    async def resumable_in_actor(self, n: int) -> float:
        """``@resumable`` with the defaults it takes inside ``async with Actor:``."""
        async with self.actor():
            return await resumable_subject(lambda: None)(n)


def _quiet() -> None:
    for name in ("apify", "crawlee", "dbos", "resumable"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def measure(items: int, repeats: int, dbos_items: int | None) -> dict[str, Any]:
    """Time every subject *repeats* times, alternating their order; return medians per item."""
    _quiet()
    directory = Path(tempfile.mkdtemp(prefix="resumable-bench-cost-"))
    environment = Environment(directory)
    subjects: dict[str, tuple[Subject, int]] = {
        "floor": (floor, items),
        "@resumable, MemoryStore": (resumable_subject(MemoryStore), items),
        "@resumable, FileStore": (
            resumable_subject(lambda: FileStore(directory / "files")),
            items,
        ),
        "@resumable in an Actor (ApifyStore)": (environment.resumable_in_actor, items),
        "floor, a method call per item": (method_call_loop, items),
        "job().advance() per item": (advance_loop, items),
        "Actor.use_state() per item": (environment.use_state, items),
        "Crawlee RecoverableState per item": (environment.recoverable_state, items),
    }
    try:
        if dbos_items is not None:
            environment.start_dbos()
            subjects["DBOS workflow, one step per item"] = (environment.dbos, dbos_items)
        seconds: dict[str, list[float]] = {name: [] for name in subjects}
        for repeat, name in rounds(list(subjects), repeats):
            subject, n = subjects[name]
            gc.collect()
            elapsed = await subject(n)
            if repeat:
                seconds[name].append(elapsed)
    finally:
        environment.stop_dbos()
        shutil.rmtree(directory, ignore_errors=True)
    return per_item(seconds, {name: n for name, (_, n) in subjects.items()}, "floor")


def run(
    items: int = ITEMS, repeats: int = 7, dbos_items: int | None = DBOS_ITEMS
) -> dict[str, Any]:
    """Measure every subject; ``dbos_items=None`` leaves DBOS out."""
    return asyncio.run(measure(items, repeats, dbos_items))


def table(results: dict[str, Any]) -> str:
    """Render *results* as a markdown table."""
    return per_item_table(results)


def main() -> None:
    """Run with the command line's sizes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dbos-items", type=int, default=DBOS_ITEMS, help="0: leave DBOS out")
    args = parser.parse_args()
    print(table(run(args.items, args.repeats, args.dbos_items or None)))


if __name__ == "__main__":
    main()
