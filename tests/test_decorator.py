"""The decorator face: what @resumable accepts, how runs resume, and what they return."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from resumable import (
    FileStore,
    InvalidKeyError,
    MemoryStore,
    Outcome,
    Record,
    resumable,
)


def make_counter(store: MemoryStore | FileStore, n: int = 10, key: str = "count"):
    """A job that yields 1..n, remembering what it processed."""
    processed: list[int] = []

    @resumable(key=key, store=store, triggers=[])
    async def count(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, n):
            processed.append(i)
            yield i + 1

    return count, processed


async def test_bare_decorator_runs_to_completion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """@resumable without arguments derives the key from the function's name."""
    monkeypatch.chdir(tmp_path)

    @resumable
    async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, 3):
            yield i + 1

    outcome = await numbers()

    assert outcome.key == "test_bare_decorator_runs_to_completion.numbers"
    assert "completed" == outcome.status
    assert 3 == outcome.cursor
    assert (tmp_path / ".resumable" / f"{outcome.key}.json").exists()


async def test_outcome_of_a_fresh_run():
    """A fresh run reports every yield, its writes, and no resume point."""
    store = MemoryStore()
    count, processed = make_counter(store, 5)

    outcome = await count()

    assert (
        Outcome(key="count", status="completed", cursor=5, resumed_from=None, yields=5, saves=2)
        == outcome
    )
    assert [0, 1, 2, 3, 4] == processed


async def test_a_later_run_starts_from_the_completed_cursor():
    """Incremental jobs: the next run of a completed key continues from its last cursor."""
    store = MemoryStore()
    count, _ = make_counter(store, 5)
    await count()
    more, processed_more = make_counter(store, 8)

    outcome = await more()

    assert 5 == outcome.resumed_from
    assert [5, 6, 7] == processed_more
    assert 8 == outcome.cursor


async def test_failure_persists_the_last_yielded_cursor_and_reraises_unchanged():
    """A generator's exception is re-raised as the same object after a `failed` write."""
    store = MemoryStore()
    boom = RuntimeError("boom")

    @resumable(key="fails", store=store, triggers=[])
    async def fails(*, cursor: int = 0) -> AsyncIterator[int]:
        yield cursor + 1
        yield cursor + 2
        raise boom

    with pytest.raises(RuntimeError) as caught:
        await fails()
    state = await fails.state()

    assert boom is caught.value
    assert state is not None
    assert ("failed", 2) == (state.status, state.cursor)


async def test_failure_resumes_from_the_last_yield():
    """After a failure, the next run starts from the cursor persisted with `failed`."""
    store = MemoryStore()
    attempts: list[int] = []

    @resumable(key="flaky", store=store, triggers=[])
    async def flaky(*, cursor: int = 0) -> AsyncIterator[int]:
        attempts.append(cursor)
        for i in range(cursor, 6):
            if i == 3 and len(attempts) == 1:
                raise ValueError("transient")
            yield i + 1

    with pytest.raises(ValueError, match="transient"):
        await flaky()
    outcome = await flaky()

    assert [0, 3] == attempts
    assert 6 == outcome.cursor


async def test_cancellation_persists_then_propagates():
    """Cancelling a run writes the last cursor, then the CancelledError goes on up."""
    store = MemoryStore()
    reached = asyncio.Event()

    @resumable(key="slow", store=store, triggers=[])
    async def slow(*, cursor: int = 0) -> AsyncIterator[int]:
        yield 1
        yield 2
        reached.set()
        await asyncio.Event().wait()
        yield 3

    task = asyncio.ensure_future(slow())
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    state = await slow.state()

    assert state is not None
    assert (2, "aborted") == (state.cursor, state.status)


async def test_watching_a_run_hands_over_each_cursor_and_keeps_the_outcome():
    """`async for` over a run sees every cursor, after the engine recorded it."""
    store = MemoryStore()
    count, _ = make_counter(store, 4)
    run = count()
    seen = [cursor async for cursor in run]

    assert [1, 2, 3, 4] == seen
    assert run.outcome is not None
    assert ("completed", 4, 4) == (run.outcome.status, run.outcome.cursor, run.outcome.yields)


async def test_breaking_out_of_a_watched_run_persists_the_last_cursor():
    """A watcher that stops early leaves the last handed-over cursor persisted."""
    store = MemoryStore()
    count, _ = make_counter(store, 10)
    run = count()
    cursors = aiter(run)
    async for cursor in cursors:
        if cursor == 3:
            break
    await cursors.aclose()  # type: ignore[attr-defined]
    state = await count.state()

    assert state is not None
    assert (3, "aborted") == (state.cursor, state.status)
    assert run.outcome is not None
    assert "aborted" == run.outcome.status


async def test_a_run_starts_once():
    """Awaiting the same run twice is a mistake worth a clear error."""
    count, _ = make_counter(MemoryStore(), 1)
    run = count()
    await run

    with pytest.raises(RuntimeError, match="already"):
        await run
    with pytest.raises(RuntimeError, match="already started"):
        [c async for c in run]


def test_a_run_is_a_coroutine_for_asyncio_run():
    """asyncio.run(job()) works, as it would for any coroutine."""
    count, processed = make_counter(MemoryStore(), 3)

    outcome = asyncio.run(count())

    assert (3, [0, 1, 2]) == (outcome.cursor, processed)


async def test_state_and_reset():
    """`state()` peeks at the record without running; `reset()` forgets it."""
    store = MemoryStore()
    count, _ = make_counter(store, 3)

    before = await count.state()
    await count()
    after = await count.state()
    await count.reset()
    gone = await count.state()

    assert before is None
    assert isinstance(after, Record)
    assert ("count", 3, "completed") == (after.key, after.cursor, after.status)
    assert after.updated_at.tzinfo is not None
    assert gone is None


async def test_key_from_a_function_of_the_arguments():
    """A callable key gets the job's arguments, so each argument set resumes on its own."""
    store = MemoryStore()

    @resumable(key=lambda shard: f"shard-{shard}", store=store, triggers=[])
    async def shard_job(shard: int, *, cursor: int = 0) -> AsyncIterator[int]:
        for i in range(cursor, shard):
            yield i + 1

    first = await shard_job(2)
    second = await shard_job(5)

    assert ("shard-2", 2) == (first.key, first.cursor)
    assert ("shard-5", 5) == (second.key, second.cursor)
    assert ["shard-2", "shard-5"] == await store.keys()


async def test_an_explicit_cursor_argument_replaces_the_fresh_start():
    """Calling with cursor= sets where a fresh run starts."""
    count, processed = make_counter(MemoryStore(), 6)

    outcome = await count(cursor=4)

    assert [4, 5] == processed
    assert 6 == outcome.cursor


async def test_arguments_are_passed_through(tmp_path: Path):
    """Positional and keyword arguments reach the generator; state goes to the FileStore."""
    store = FileStore(tmp_path)

    @resumable(key="args", store=store, triggers=[])
    async def job_with_args(a: int, *, b: str, cursor: str = "") -> AsyncIterator[str]:
        yield f"{a}{b}"

    outcome = await job_with_args(1, b="x")
    on_disk = json.loads((tmp_path / "args.json").read_text())

    assert "1x" == outcome.cursor
    assert ("1x", "completed") == (on_disk["cursor"], on_disk["status"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("async def f(*, cursor: int = 0):\n    return 1", "an `async def` that never yields"),
        ("def f(*, cursor: int = 0):\n    return 1", "generator function"),
        ("async def f():\n    yield 1", "no keyword parameter `cursor`"),
        ("async def f(*cursor):\n    yield 1", "no keyword parameter `cursor`"),
        ("async def f(*, cursor: int):\n    yield 1", "has no default"),
        ("async def f(*, cursor=None):\n    yield 1", "annotate `cursor`"),
    ],
)
def test_decorating_the_wrong_thing_is_a_type_error(source: str, message: str):
    """Decoration fails at once, saying what is expected, bare or with options."""
    namespace: dict[str, object] = {}
    exec(source, namespace)  # noqa: S102 - building functions of every wrong shape
    function = namespace["f"]

    with pytest.raises(TypeError, match=message):
        resumable(function)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=message):
        resumable(key="k")(function)  # type: ignore[arg-type]


def test_a_class_or_a_coroutine_is_not_mistaken_for_a_key_function():
    """@resumable on a coroutine function with `cursor` does not become a key function."""

    async def coroutine(*, cursor: int = 0) -> int:
        return cursor

    with pytest.raises(TypeError, match="an `async def` that never yields"):
        resumable(coroutine)  # type: ignore[call-overload]


@pytest.mark.parametrize("key", ["", "a/b", "x" * 257, "spaces are bad", "ü"])
def test_invalid_keys_are_refused_at_decoration(key: str):
    """Keys outside what every store accepts are refused with the rule in the message."""
    with pytest.raises(InvalidKeyError, match="a-z, A-Z, 0-9"):

        @resumable(key=key)
        async def job_with_bad_key(*, cursor: int = 0) -> AsyncIterator[int]:
            yield cursor


async def test_a_key_function_returning_an_invalid_key_is_refused_at_call():
    """A computed key is checked when the run starts."""

    @resumable(key=lambda name: name, store=MemoryStore(), triggers=[])
    async def named(name: str, *, cursor: int = 0) -> AsyncIterator[int]:
        yield cursor

    with pytest.raises(InvalidKeyError, match="'no/slashes'"):
        await named("no/slashes")


async def test_default_store_is_a_file_store_in_dot_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Outside an Actor, store=None means FileStore('.resumable') in the working directory."""
    monkeypatch.chdir(tmp_path)

    @resumable(key="defaults", triggers=[])
    async def defaults(*, cursor: int = 0) -> AsyncIterator[int]:
        yield 7

    await defaults()

    assert 7 == json.loads((tmp_path / ".resumable" / "defaults.json").read_text())["cursor"]
