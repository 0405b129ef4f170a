"""Plain generators: `@resumable` on a `def`, and `with job(...)`, over the same engine."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CountingStore, poll, record_of

from resumable import (
    Controls,
    FileStore,
    FinishedJobError,
    InvalidOptionError,
    Job,
    JsonLinesSink,
    MemoryStore,
    Outbox,
    ResumableWarning,
    Signals,
    Store,
    SyncJob,
    SyncJobFunction,
    job,
    resumable,
)
from resumable._stores import Guard
from resumable._view import RunView
from resumable.testing import assert_resumes


def counter(store: Store, **options: Any) -> SyncJobFunction[[int], int]:
    @resumable(key="count", store=store, triggers=[], **options)
    def count(n: int, *, cursor: int = 0) -> Iterator[int]:
        for i in range(cursor, n):
            yield i + 1

    return count


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: FileStore(".state")])
def test_a_plain_generator_runs_to_its_end_and_the_next_run_resumes(
    make_store: Callable[[], Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Calling the job runs it in this thread and returns its Outcome; a rerun starts there."""
    monkeypatch.chdir(tmp_path)
    store = make_store()
    count = counter(store)

    first = count(10)
    again = counter(store)(25)

    assert ("completed", 10, None, 10) == (
        first.status,
        first.cursor,
        first.resumed_from,
        first.yields,
    )
    assert ("completed", 25, 10, 15) == (
        again.status,
        again.cursor,
        again.resumed_from,
        again.yields,
    )


def test_state_and_reset_are_plain_methods():
    """`state()` returns the record and `reset()` forgets it, without an event loop."""
    count = counter(MemoryStore())
    count(5)

    record = count.state(5)
    count.reset(5)

    assert record is not None
    assert (5, "completed") == (record.cursor, record.status)
    assert None is count.state(5)


async def test_state_works_from_inside_a_running_event_loop():
    """A plain job's `state()` runs on a loop of its own, so async code may call it too."""
    count = counter(MemoryStore())
    with pytest.warns(ResumableWarning, match="blocks the loop"):
        count(3)

    record = count.state(3)

    assert record is not None
    assert 3 == record.cursor


def test_with_job_advances_saves_and_persists_on_exit():
    """`with job(...) as j:` advances in this thread; `j.save()` waits for its write."""
    store = MemoryStore()

    with job("export", cursor=0, store=store, triggers=[]) as j:
        assert isinstance(j, SyncJob)
        for i in range(j.cursor, 7):
            j.advance(i + 1)
        j.save()
        saved = record_of(store, "export")

    assert ("running", 7) == (saved["status"], saved["cursor"])
    assert ("completed", 7) == (record_of(store, "export")["status"], j.persisted)
    assert j.outcome is not None
    assert ("completed", 7, 7) == (j.outcome.status, j.outcome.cursor, j.outcome.yields)


def test_an_exception_leaving_the_block_persists_failed_and_propagates():
    """The last advanced cursor is written with status `failed`; the exception is the user's."""
    store = MemoryStore()

    with pytest.raises(ZeroDivisionError), job("div", cursor=0, store=store, triggers=[]) as j:
        j.advance(3)
        _ = 1 / 0

    assert ("failed", 3) == (record_of(store, "div")["status"], record_of(store, "div")["cursor"])


def test_a_failing_plain_generator_persists_failed_and_closes_it():
    """The generator's exception propagates unchanged after the last cursor is saved."""
    store = MemoryStore()
    closed = []

    @resumable(key="boom", store=store, triggers=[])
    def boom(*, cursor: int = 0) -> Iterator[int]:
        try:
            yield 1
            yield 2
            raise LookupError("no page 3")
        finally:
            closed.append(True)

    with pytest.raises(LookupError, match="no page 3"):
        boom()

    assert [True] == closed
    assert ("failed", 2) == (record_of(store, "boom")["status"], record_of(store, "boom")["cursor"])


def test_a_job_is_entered_once():
    """Entering the same job twice is refused with the engine's message."""
    j = job("once", cursor=0, store=MemoryStore(), triggers=[])
    with j:
        pass

    with pytest.raises(FinishedJobError, match="already started"), j:
        pass


def test_mutable_cursors_are_copied_at_each_yield():
    """A cursor mutated in place after its yield is persisted as it was yielded."""
    store = MemoryStore()

    @resumable(key="pages", store=store, triggers=[], every=1)
    def pages(*, cursor: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
        state = {"page": 0}
        for page in range(1, 4):
            state["page"] = page
            yield state
        state["page"] = 99  # after the last yield: never persisted

    outcome = pages()

    assert {"page": 3} == outcome.cursor


class SlowStore(MemoryStore):
    """A MemoryStore whose saves take *delay* seconds, and whose first routine save waits
    at a gate the test opens."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.gate = threading.Event()

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.calls += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
            if self.calls == 2:  # the first save after the claim
                await asyncio.to_thread(self.gate.wait)
            await super().save(key, data, guard=guard)
        finally:
            self.in_flight -= 1


def test_a_slow_store_never_makes_a_yield_wait():
    """With a save in flight (50 ms, then held), the generator goes on yielding: every yield
    asks for a save and none waits for the store."""
    store = SlowStore(delay=0.05)
    seen: list[int] = []

    @resumable(key="slow", store=store, triggers=[], every=1)
    def slow(*, cursor: int = 0) -> Iterator[int]:
        yield 1
        poll(lambda: store.in_flight == 1 and store.calls == 2)
        yield from range(2, 1001)
        seen.append(store.calls)
        store.gate.set()

    outcome = slow()

    assert [2] == seen  # a thousand yields while the first routine save was still in flight
    assert ("completed", 1000) == (outcome.status, outcome.cursor)
    assert ("completed", 1000) == (
        record_of(store, "slow")["status"],
        record_of(store, "slow")["cursor"],
    )


class AbortAfter:
    """A trigger that aborts the job once it has yielded *n* cursors."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.tasks: set[asyncio.Task[None]] = set()

    def attach(self, controls: Controls, /) -> Callable[[], None]:
        async def watch() -> None:
            while controls.yields < self.n:
                controls.refresh()
                await asyncio.sleep(0.001)
            await controls.abort("enough")

        task = asyncio.get_running_loop().create_task(watch())
        self.tasks.add(task)
        return task.cancel


def test_a_trigger_stops_a_plain_generator_at_its_next_yield():
    """A trigger on the job's loop aborts it; the generator stops at a yield and is closed."""
    store = MemoryStore()
    yielded: list[int] = []
    closed = []

    @resumable(key="endless", store=store, triggers=[AbortAfter(50)])
    def endless(*, cursor: int = 0) -> Iterator[int]:
        try:
            i = cursor
            while True:
                i += 1
                yielded.append(i)
                yield i
        finally:
            closed.append(True)

    outcome = endless()

    assert [True] == closed
    assert "aborted" == outcome.status
    assert yielded[-1] == outcome.cursor
    assert ("aborted", yielded[-1]) == (
        record_of(store, "endless")["status"],
        record_of(store, "endless")["cursor"],
    )


def test_a_signal_in_the_main_thread_stops_the_job_and_restores_the_handler():
    """SIGTERM raised in the generator aborts the job at its next yield; the handler that was
    installed before is back afterwards."""
    store = MemoryStore()
    before = signal.getsignal(signal.SIGTERM)
    during = []
    yielded: list[int] = []

    @resumable(key="sig", store=store, triggers=[Signals()])
    def endless(*, cursor: int = 0) -> Iterator[int]:
        i = cursor
        while True:
            i += 1
            if i == 10:
                during.append(signal.getsignal(signal.SIGTERM))
                signal.raise_signal(signal.SIGTERM)
            yielded.append(i)
            yield i

    outcome = endless()

    assert "aborted" == outcome.status
    assert yielded[-1] == outcome.cursor
    assert before != during[0]
    assert before == signal.getsignal(signal.SIGTERM)


def test_signals_are_not_watched_for_a_job_outside_the_main_thread():
    """A plain job run in another thread leaves the signal handlers alone."""
    before = signal.getsignal(signal.SIGTERM)
    during: list[object] = []

    @resumable(key="thread", store=MemoryStore(), triggers=[Signals()])
    def work(*, cursor: int = 0) -> Iterator[int]:
        during.append(signal.getsignal(signal.SIGTERM))
        yield 1

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()

    assert [before] == during


def test_a_store_bound_to_the_actors_loop_is_refused_with_a_clear_error():
    """ApifyEvents need the Actor's event loop: a plain job says so before it starts."""
    apify = pytest.importorskip("resumable.apify")

    @resumable(key="actor", store=MemoryStore(), triggers=[apify.ApifyEvents()])
    def work(*, cursor: int = 0) -> Iterator[int]:
        yield 1

    with pytest.raises(InvalidOptionError, match="'actor' is a plain generator"):
        work()


async def test_assert_resumes_checks_a_plain_generator():
    """The crash-and-resume check runs a plain job's generator at every crash point."""

    @resumable(key="square", store=MemoryStore())
    def squares(n: int, *, cursor: int = 0) -> Iterator[int]:
        for i in range(cursor, n):
            yield i + 1

    await assert_resumes(squares, 6)


def test_the_cli_shows_a_plain_jobs_record(tmp_path: Path):
    """`python -m resumable show` reads what a plain job persisted."""
    counter(FileStore(tmp_path))(4)

    shown = subprocess.run(
        [sys.executable, "-m", "resumable", "--store", str(tmp_path), "show", "count", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    assert ("completed", 4) == (
        json.loads(shown.stdout)["status"],
        json.loads(shown.stdout)["cursor"],
    )


def test_every_n_yields_saves_from_the_jobs_own_loop():
    """`every=` wakes the writer on the job's loop from the calling thread: saves happen while
    the generator is still running."""
    store = CountingStore()
    writes_while_running: list[int] = []

    @resumable(key="every", store=store, triggers=[], every=10, interval=None)
    def work(*, cursor: int = 0) -> Iterator[int]:
        yield from range(1, 11)
        poll(lambda: len(store.writes) >= 2)
        writes_while_running.append(len(store.writes))

    outcome = work()

    assert 2 <= writes_while_running[0]
    assert "completed" == outcome.status


def test_with_job_sees_stopping_after_a_signal_and_ends_aborted():
    """In the `with` form a signal sets `j.stopping`; the body leaves and the run is aborted."""
    store = MemoryStore()

    with job("block", cursor=0, store=store, triggers=[Signals()]) as j:
        j.advance(1)
        signal.raise_signal(signal.SIGTERM)
        poll(lambda: j.stopping)
        j.advance(2)

    assert j.outcome is not None
    assert ("aborted", 2) == (j.outcome.status, j.outcome.cursor)
    assert ("aborted", 2) == (
        record_of(store, "block")["status"],
        record_of(store, "block")["cursor"],
    )


def test_a_cursor_advanced_after_the_grace_is_not_persisted():
    """A thread cannot be cancelled: past the grace the work is cut, and what it advances
    afterwards is dropped; the run ends `aborted` at the cursor it had at the cut."""
    store = MemoryStore()

    with job("late", cursor=0, store=store, triggers=[Signals()], grace=0.05) as j:
        j.advance(1)
        signal.raise_signal(signal.SIGTERM)
        poll(lambda: j._run._work.cut)
        j.advance(2)

    assert j.outcome is not None
    assert ("aborted", 1) == (j.outcome.status, j.outcome.cursor)
    assert ("aborted", 1) == (
        record_of(store, "late")["status"],
        record_of(store, "late")["cursor"],
    )


def test_a_plain_generator_delivers_its_outputs_exactly_once(tmp_path: Path):
    """`out` works in a plain generator: every item reaches the sink once, across a run
    that fails half-way and the run that resumes it."""
    sink = JsonLinesSink(tmp_path / "out.jsonl")
    store = FileStore(tmp_path / "state")
    fail_at = [5]

    @resumable(key="rows", store=store, sink=sink, every=1, triggers=[])
    def rows(*, cursor: int = 0, out: Outbox[dict[str, int]]) -> Iterator[int]:
        for i in range(cursor, 10):
            if i == fail_at[0]:
                fail_at[0] = -1
                raise RuntimeError("the job fails half-way")
            out.push({"row": i})
            yield i + 1

    with pytest.raises(RuntimeError):
        rows()  # type: ignore[call-arg]
    outcome = rows()  # type: ignore[call-arg]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]

    assert ("completed", 10) == (outcome.status, outcome.cursor)
    assert [{"row": i} for i in range(10)] == lines


def test_with_job_pushes_through_j_out(tmp_path: Path):
    """The plain `with job(...)` form has `j.out` too."""
    sink = JsonLinesSink(tmp_path / "out.jsonl")
    with job("plain-out", 0, store=MemoryStore(), sink=sink, triggers=[]) as j:
        for i in range(3):
            j.out.push({"n": i})
            j.advance(i + 1)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]

    assert [{"n": 0}, {"n": 1}, {"n": 2}] == lines
    assert j.outcome is not None
    assert 3 == j.outcome.outputs


def test_with_job_enters_and_leaves_the_run_in_one_task_on_its_loop():
    """The plain face's loop runs the run's start and end in one task (as a blocking portal
    holds an async context manager): what a trigger attaches there, it detaches there."""
    tasks: list[asyncio.Task[Any] | None] = []

    class Witness:
        def attach(self, controls: Controls, /) -> Callable[[], None]:
            tasks.append(asyncio.current_task())
            return lambda: tasks.append(asyncio.current_task())

    with job("one-task", cursor=0, store=MemoryStore(), triggers=[Witness()]) as j:
        j.advance(1)

    assert 2 == len(tasks)
    assert tasks[0] is not None
    assert tasks[0] is tasks[1]


def test_job_holds_every_fact_of_the_view_itself():
    """`Job` shows each fact of `RunView` as its own attribute or property, so only the plain
    face reads through the view to the engine."""
    shadowed = {
        name: getattr(Job, name) is not fact
        for name, fact in vars(RunView).items()
        if isinstance(fact, property)
    }

    assert dict.fromkeys(shadowed, True) == shadowed
    assert {"key", "cursor", "stopping", "yields", "persisted", "out"} <= set(shadowed)
