"""The pytest plugin that installing resumable registers: fixtures for testing jobs.

``memory_store``
    A fresh `resumable.MemoryStore`, empty.
``failing_store``
    A factory of `resumable.testing.FailingStore`: ``failing_store(first=2)`` wraps the test's
    ``memory_store`` (pass ``inner=`` for another store) and takes the same options.
``resumable_fast_timing``
    Inside the test, jobs retry a failing store for one second instead of ten, with a
    millisecond between attempts (`resumable.testing.fast_timing`); it yields the
    `resumable.Timing` they get.
``platform_events``
    A started `resumable.testing.PlatformEvents`: the Apify platform's events websocket on
    127.0.0.1, to send a real Actor ``migrating``, ``aborting`` or ``persistState``. Skipped
    when the ``apify`` extra is not installed.
``actor_process``
    A factory of `resumable.testing.ActorProcess`: ``actor_process("my_actor", input={...})``
    runs your unmodified Actor in a child process against ``platform_events``, its storage
    in the test's ``tmp_path``; every run still going is killed when the test ends.

Nothing of resumable is imported until a fixture is used, so the plugin costs nothing in
test runs that do not use it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from resumable import MemoryStore, Timing
    from resumable.testing import ActorProcess, FailingStore, PlatformEvents

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # without pytest-asyncio, async fixtures are up to the user's async plugin
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@pytest.fixture
def memory_store() -> MemoryStore:
    """A fresh, empty in-memory store."""
    from resumable import MemoryStore  # noqa: PLC0415 - the plugin loads with every pytest run

    return MemoryStore()


@pytest.fixture
def failing_store(memory_store: MemoryStore) -> Callable[..., FailingStore]:
    """A factory of stores that fail on purpose, wrapping ``memory_store`` by default.

    Call it with `resumable.testing.FailingStore`'s options: ``failing_store(first=2)``,
    ``failing_store(every=3)``, ``failing_store(after=0.5)``, ``failing_store(forever=True)``.
    """
    from resumable.testing import FailingStore  # noqa: PLC0415 - see memory_store

    return functools.partial(FailingStore, inner=memory_store)


@pytest.fixture
def resumable_fast_timing() -> Iterator[Timing]:
    """Make the jobs that start in the test retry fast (`resumable.testing.fast_timing`)."""
    from resumable.testing import fast_timing  # noqa: PLC0415 - see memory_store

    with fast_timing() as timing:
        yield timing


@_async_fixture
async def platform_events() -> AsyncIterator[PlatformEvents]:
    """A started stand-in of the Apify platform's events websocket.

    Skips the test when the ``apify`` extra (which brings the websocket library) is missing.
    """
    from resumable._distribution import install_hint  # noqa: PLC0415 - see memory_store

    reason = f"platform_events needs the apify extra: {install_hint('apify')}"
    pytest.importorskip("apify", reason=reason)
    pytest.importorskip("websockets", reason=reason)
    from resumable.testing import PlatformEvents  # noqa: PLC0415 - see memory_store

    async with PlatformEvents() as platform:
        yield platform


@_async_fixture
async def actor_process(
    platform_events: PlatformEvents, tmp_path: Path
) -> AsyncIterator[Callable[..., ActorProcess]]:
    """A factory of Actors in child processes, connected to ``platform_events``.

    Call it with `resumable.testing.ActorProcess`'s arguments: ``actor_process("my_actor")``
    for ``python -m my_actor``, ``actor_process(Path("main.py"), input={"items": 10})`` for a
    script. Each Actor's storage goes into ``tmp_path``; runs still going at the end of the
    test are killed.
    """
    from resumable.testing import ActorProcess  # noqa: PLC0415 - see memory_store

    made: list[ActorProcess] = []

    def make(target: str | Path, *args: str, **options: Any) -> ActorProcess:
        options.setdefault("platform", platform_events)
        options.setdefault("directory", tmp_path / f"actor{len(made) + 1}")
        actor = ActorProcess(target, *args, **options)
        made.append(actor)
        return actor

    try:
        yield make
    finally:
        for actor in made:
            await actor.aclose()
