"""A hypothesis state machine over the engine, checking the contract's persistence rules.

It drives both faces of the engine: the `job()` context manager, and the `@resumable`
decorator over a generator that yields what the machine tells it to.

Random sequences of advances, timer ticks, urgent saves, migrations, aborts, cancellations,
errors, store failures and held-up writes run against one `Job` at a time (and the runs that
resume it). After every step the records that reached the store must obey the rules of
API.md, "When state is persisted": a persisted cursor is one that was yielded, writes never
go back to an older cursor, ``seq`` grows by one per write tried, nothing is written when nothing
changed, at most one write is in flight, and each way of ending leaves its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import Grab, VirtualTimeLoop
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from resumable import Job, StoreError, job, resumable
from resumable._phase import Phase
from resumable._stores import Guard
from resumable.testing import FailingStore, fast_timing

KEY = "machine"


class BoomError(Exception):
    """The job's own failure."""


class ProbeStore:
    """Records every write that landed, counts writes in flight, and can hold writes at a gate."""

    def __init__(self, inner: FailingStore) -> None:
        self.inner = inner
        self.records: list[dict[str, Any]] = []
        self.tried: set[int] = set()  # the seq of every write asked for, landed or not
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, key: str) -> bytes | None:
        return await self.inner.load(key)

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        self.tried.add(json.loads(data)["seq"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # give another writer the chance to overlap, if it could
            await self.gate.wait()
            await self.inner.save(key, data, guard=guard)
            self.records.append(json.loads(data))
        finally:
            self.in_flight -= 1

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def keys(self) -> list[str]:
        return await self.inner.keys()


class EngineMachine(RuleBasedStateMachine):
    """One store, a run of the job at a time, and a model of what the store must hold."""

    def __init__(self) -> None:
        super().__init__()
        # Virtual time: a budget passes only when the loop has nothing else to do, so what
        # lands before which deadline follows from the order of the work, not the load.
        self.loop = VirtualTimeLoop()
        # Retry fast and give up soon, so a broken store costs milliseconds, not seconds.
        self.timing = contextlib.ExitStack()
        self.timing.enter_context(fast_timing(save=0.05))
        self.failing = FailingStore()
        self.probe = ProbeStore(self.failing)
        self.commands: asyncio.Queue[str] = asyncio.Queue()
        self.side: list[asyncio.Task[None]] = []
        self.yielded: set[int] = {0}
        self.next_cursor = 0
        self.every: int | None = None
        self.form = "job"
        self.job: Job[int] | None = None
        self.body: asyncio.Task[None] | None = None
        self.waiting = False
        self.latest = 0
        self.advances = 0
        self.ending: str | None = None
        self.checked_end = True
        self.broken_while_ending = False
        self.migrated = False
        self.save_failed = False

    def teardown(self) -> None:
        try:
            self.probe.gate.set()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=5))
            # The body's and the side tasks' errors were checked by the rules; mark them seen.
            for task in [*pending, *self.side, *([self.body] if self.body else [])]:
                if task.done() and not task.cancelled():
                    task.exception()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            self.timing.close()

    # -- driving --------------------------------------------------------------------------------

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def start(self) -> None:
        self.failing.forever = False
        self.failing._pending = 0
        before = self.probe.records[-1]["cursor"] if self.probe.records else 0
        self.commands = asyncio.Queue()
        self.side = []
        self.waiting = False
        self.advances = 0
        self.ending = None
        self.checked_end = False
        self.broken_while_ending = False
        self.migrated = False
        self.save_failed = False
        options: dict[str, Any] = {
            "store": self.probe,
            "interval": None,
            "every": self.every,
            "grace": 0,  # the body waits on commands and never looks at `stopping`
        }
        if self.form == "job":
            self.job = job(KEY, cursor=0, triggers=[], **options)
            started = self.loop.create_future()
            self.body = self.loop.create_task(self.body_of(self.job, self.commands, started))
            self.run(asyncio.wait([started, self.body], return_when=asyncio.FIRST_COMPLETED))
        else:
            grab = Grab()
            run = resumable(key=KEY, triggers=[grab], **options)(self.generator_of(self.commands))
            self.body = self.loop.create_task(_outcome_of(run()))
            self.run(
                asyncio.wait(
                    [self.loop.create_task(grab.job()), self.body],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            )
            self.job = grab.controls[-1]  # type: ignore[assignment]
        self.latest = self.job.cursor
        self.settle()

        assert before == self.job.cursor

    async def body_of(
        self, j: Job[int], commands: asyncio.Queue[str], started: asyncio.Future[None]
    ) -> None:
        async with j:
            started.set_result(None)
            while True:
                self.waiting = True
                command = await commands.get()
                self.waiting = False
                if command == "end":
                    return
                if command == "raise":
                    raise BoomError
                try:
                    await j.save(timeout=0.05)
                except StoreError:
                    self.save_failed = True

    def generator_of(self, commands: asyncio.Queue[str]) -> Any:
        machine = self

        async def numbers(*, cursor: int = 0) -> AsyncIterator[int]:
            while True:
                machine.waiting = True
                command = await commands.get()
                machine.waiting = False
                if command == "end":
                    return
                if command == "raise":
                    raise BoomError
                yield int(command)

        return numbers

    @property
    def active(self) -> bool:
        return self.body is not None and not self.body.done() and self.ending is None

    def quiet(self) -> bool:
        j, body = self.job, self.body
        assert j is not None
        assert body is not None
        idle_body = self.body_idle()
        return (
            self.probe.in_flight == 0
            and not j._writer.busy
            and not j._writer.pending
            and idle_body
            and all(t.done() for t in self.side)
        )

    def body_idle(self) -> bool:
        body = self.body
        assert body is not None
        return body.done() or (self.waiting and self.commands.empty()) or self.parked()

    def parked(self) -> bool:
        j = self.job
        assert j is not None
        return j._phase is Phase.PARKED and self.ending == "end" and self.migrated

    def settle(self) -> None:
        """Run the loop until the step's work is all done: nothing ready, no timer due soon.

        A step ends at the same point however busy the machine is: a write held at the gate
        waits out its budget within the step, never in a later one, so the rules that the
        next step may choose follow from the steps taken, not from how fast they ran.
        """

        async def settled() -> None:
            deadline = time.monotonic() + 30
            calm = 0
            while calm < 2:
                await asyncio.sleep(0.001)
                self.at_most_one_write_in_flight()
                held = not self.probe.gate.is_set()
                calm = calm + 1 if not _busy(self.loop) and (held or self.quiet()) else 0
                assert time.monotonic() < deadline, "the engine did not settle"

        self.run(settled())

    def healthy_gate(self) -> bool:
        return self.probe.gate.is_set()

    def healthy(self) -> bool:
        return not self.failing.forever and self.probe.gate.is_set()

    def last(self) -> tuple[object, object]:
        record = self.probe.records[-1]
        return record["cursor"], record["status"]

    # -- rules ----------------------------------------------------------------------------------

    @initialize(every=st.sampled_from([None, 1, 3]), form=st.sampled_from(["job", "decorator"]))
    def first_run(self, every: int | None, form: str) -> None:
        self.every = every
        self.form = form
        self.start()

    # A decorated job takes no cursor after a migration: its loop stops at the next one.
    @precondition(lambda self: self.active and not (self.form == "decorator" and self.migrated))
    @rule(n=st.integers(1, 4))
    def advance(self, n: int) -> None:
        assert self.job is not None
        for _ in range(n):
            self.next_cursor += 1
            self.yielded.add(self.next_cursor)
            if self.form == "job":
                self.job.advance(self.next_cursor)
            else:
                self.commands.put_nowait(str(self.next_cursor))
            self.latest = self.next_cursor
            self.advances += 1
        self.settle()

    @precondition(lambda self: self.active)
    @rule()
    def timer_tick(self) -> None:
        assert self.job is not None
        before = len(self.probe.records)
        unchanged = self.last() == (self.latest, "running")
        self.job.request_save()
        self.settle()

        if self.healthy():
            assert (self.latest, "running") == self.last()
            if unchanged:
                assert before == len(self.probe.records), "a write with nothing changed"

    @precondition(lambda self: self.active and self.form == "job")
    @rule()
    def urgent_save(self) -> None:
        self.save_failed = False
        self.commands.put_nowait("save")
        self.settle()

        if self.healthy():
            assert (self.latest, "running") == self.last()
            assert not self.save_failed
        # (A save held at the gate fails later, when its budget runs out.)
        if self.failing.forever and self.healthy_gate() and self.last() != (self.latest, "running"):
            assert self.save_failed

    @precondition(lambda self: self.active and not self.migrated)
    @rule()
    def migrate(self) -> None:
        assert self.job is not None
        self.migrated = True
        self.side.append(self.loop.create_task(self.job.migrate(timeout=0.2)))
        self.settle()

        assert self.job.stopping
        if self.healthy():
            assert (self.latest, "running") == self.last()

    @precondition(lambda self: self.body is not None and not self.body.done())
    @precondition(lambda self: self.ending in (None, "end"))
    @rule()
    def abort(self) -> None:
        assert self.job is not None
        if self.ending is None or self.parked():
            self.end_with("abort")
        self.side.append(self.loop.create_task(self.job.abort()))
        self.settle()

    @precondition(lambda self: self.active)
    @rule()
    def finish(self) -> None:
        self.end_with("end")
        self.commands.put_nowait("end")
        self.settle()

    @precondition(lambda self: self.active)
    @rule()
    def fail(self) -> None:
        self.end_with("raise")
        self.commands.put_nowait("raise")
        self.settle()

    @precondition(lambda self: self.body is not None and not self.body.done())
    @precondition(lambda self: self.ending in (None, "end"))
    @rule()
    def cancel(self) -> None:
        assert self.body is not None
        self.end_with("cancel")
        self.body.cancel()
        self.settle()

    @precondition(lambda self: self.body is not None and self.body.done() and self.checked_end)
    @precondition(lambda self: self.probe.gate.is_set())
    @rule()
    def restart(self) -> None:
        self.start()

    @rule(n=st.integers(1, 3))
    def fail_next_writes(self, n: int) -> None:
        self.failing.fail_next(n)
        self.settle()

    @rule()
    def break_store(self) -> None:
        self.failing.forever = True
        if self.ending is not None:
            self.broken_while_ending = True
        self.settle()

    @rule()
    def heal_store(self) -> None:
        self.failing.forever = False
        self.failing._pending = 0
        self.settle()

    @precondition(lambda self: self.probe.gate.is_set())
    @rule()
    def hold_writes(self) -> None:
        self.probe.gate.clear()
        if self.ending is not None:
            self.broken_while_ending = True
        self.settle()

    @precondition(lambda self: not self.probe.gate.is_set())
    @rule()
    def release_writes(self) -> None:
        self.probe.gate.set()
        self.settle()

    def end_with(self, how: str) -> None:
        self.ending = how
        # A write held at the gate waits out its budget within the step: the ending's fails.
        self.broken_while_ending = self.failing.forever or not self.probe.gate.is_set()

    # -- the rules of the contract ---------------------------------------------------------------

    @invariant()
    def at_most_one_write_in_flight(self) -> None:
        assert self.probe.max_in_flight <= 1

    @invariant()
    def persisted_cursors_were_yielded_and_never_go_back(self) -> None:
        cursors = [r["cursor"] for r in self.probe.records]

        assert set(cursors) <= self.yielded
        assert sorted(cursors) == cursors

    @invariant()
    def seq_grows_by_one_per_write(self) -> None:
        """Every write takes the next seq; one that was tried and did not land (a held write
        whose budget ran out: it may land later, for all the run knows) keeps its seq."""
        seqs = [r["seq"] for r in self.probe.records]
        skipped = set(range(1, seqs[-1] + 1)) - set(seqs) if seqs else set()

        assert sorted(set(seqs)) == seqs
        assert skipped <= self.probe.tried

    @invariant()
    def no_write_when_nothing_changed(self) -> None:
        records = self.probe.records
        for before, after in itertools.pairwise(records):
            same_run = before["owner"] == after["owner"]
            unchanged = (before["cursor"], before["status"]) == (after["cursor"], after["status"])
            assert not (same_run and unchanged), f"repeated write {after}"

    @invariant()
    def the_run_counts_its_writes_and_yields(self) -> None:
        j = self.job
        if j is None:
            return
        mine = [r for r in self.probe.records if r["owner"] == j._writer.owner]

        assert len(mine) == j.saves
        if self.form == "job":  # the decorator publishes its count lazily
            assert self.advances == j.yields
        if mine and self.probe.gate.is_set():
            assert mine[-1]["cursor"] == j.persisted

    @invariant()
    def each_way_of_ending_leaves_its_status(self) -> None:
        body, j = self.body, self.job
        if body is None or j is None or self.checked_end or not body.done():
            return
        if not self.probe.gate.is_set():
            return
        self.checked_end = True
        error = None if body.cancelled() else body.exception()
        healthy = not self.broken_while_ending
        expected_status = {
            "end": "aborted" if self.migrated else "completed",
            "raise": "failed",
            "cancel": "aborted",
            "abort": "aborted",
        }[self.ending or "end"]
        if self.ending == "raise":
            assert isinstance(error, BoomError)
        elif self.ending == "cancel":
            assert body.cancelled() or self.parked_cancel(error)
        elif healthy:
            assert error is None
            assert j.outcome is not None
            assert expected_status == j.outcome.status
        if healthy and self.ending != "cancel":
            assert (self.latest, expected_status) == self.last()
        if healthy and self.ending == "cancel":
            assert self.latest == self.last()[0]

    def parked_cancel(self, error: BaseException | None) -> bool:
        return error is None and self.migrated


EngineMachine.TestCase.settings = settings(
    # On virtual time a failing example replays the same way anywhere: hypothesis keeps it
    # (in .hypothesis/) and tries it first on the next run.
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineStates = pytest.mark.timeout(120)(EngineMachine.TestCase)


HORIZON = 5.0
"""Seconds ahead within which a timer belongs to the current step (the budgets are 0.05-0.2 s)."""


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether *loop* has work left: a callback ready to run, or a timer due within `HORIZON`.

    Reads asyncio's own queues (``_ready``, ``_scheduled`` of ``BaseEventLoop``): no public
    API says whether a loop is idle, and polling what the engine exposes cannot see a
    timeout that has yet to fire.
    """
    base: Any = loop
    soon = loop.time() + HORIZON
    return bool(base._ready) or any(
        not timer.cancelled() and timer.when() <= soon for timer in base._scheduled
    )


async def _outcome_of(run: Any) -> None:
    await run
