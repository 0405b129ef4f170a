"""The supervisor of the fleet soak: worker processes, seeded chaos, a watch on every record.

`Fleet` hands the shards to worker processes (fleet_child.py), one at a time each, and
replaces a worker it kills or freezes. At seeded random moments it SIGKILLs a busy worker
(its shard goes back to the front of the queue) or SIGSTOPs one that has taken its shard
over: the shard goes to another worker, and the frozen one, a zombie, gets SIGCONT once the
record shows that the shard moved on (or after `MAX_FREEZE`). `Watch` reads every shard's
record all along and fails the moment one goes backwards or an owner that was taken over
writes again.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, cast

import attrs
from fleet_child import shard_key
from helpers import Seen
from sqlalchemy import select

from resumable import Store
from resumable.redis import RedisStore
from resumable.sql import SQLStore

CHILD = Path(__file__).with_name("fleet_child.py")

MAX_FREEZE = 5.0
"""Seconds a zombie stays frozen when its shard cannot move on: on PostgreSQL, a worker
frozen inside a save holds the row lock, and the takeover waits for it."""

MAX_ZOMBIES = 2
"""Frozen workers at a time."""

SPARES = 2
"""Workers started ahead, so that a replacement does not wait for Python to import the store's
client library: on two cores that takes seconds while the fleet runs."""


@attrs.define
class Run:
    """One run of a shard's job, as its worker reported it."""

    shard: int
    name: str
    cursor: int  # where it resumed
    started: float  # time.monotonic() when the supervisor heard of it
    fate: str = "running"  # then: completed, stale, store, other, killed
    zombie: bool = False
    woke: str = ""  # a zombie's: "moved-on" or "deadline"
    woke_at: float = 0.0
    detail: str = ""
    unstarted: bool = False  # ended in its start, before it took the key over


class Watch:
    """Reads every shard's record again and again; fails the moment one goes backwards."""

    def __init__(self, store: Store, shards: int) -> None:
        self.store = store
        self.keys = [shard_key(shard) for shard in range(shards)]
        self.raw: dict[str, bytes] = {}
        self.latest: dict[int, Seen] = {}
        self.superseded: dict[int, set[str]] = {shard: set() for shard in range(shards)}
        self.changes = 0
        self.polls = 0

    async def _load_all(self) -> list[bytes | None]:
        """Every shard's record, in one round trip: a poll must not starve the workers."""
        store = self.store
        if isinstance(store, RedisStore):
            names = [store.prefix + key for key in self.keys]
            return cast("list[bytes | None]", await store._clients.get().mget(names))
        if isinstance(store, SQLStore):
            table = store.table
            async with (await store._engine()).connect() as conn:
                rows = (await conn.execute(select(table.c.key, table.c.data))).all()
            found = {key: bytes(data) for key, data in rows}
            return [found.get(key) for key in self.keys]
        return [await store.load(key) for key in self.keys]

    async def poll(self) -> None:
        """Read every record once and check each change against the last one seen."""
        found = await self._load_all()
        self.polls += 1
        for shard, (key, data) in enumerate(zip(self.keys, found, strict=True)):
            if data is None or data == self.raw.get(key):
                continue
            seen = Seen.of(data)
            last = self.latest.get(shard)
            if last is not None:
                seen.check_after(last, key)
                assert seen.owner not in self.superseded[shard], (
                    f"{key}: {seen.owner} wrote after it was taken over ({last} then {seen})"
                )
                if seen.owner != last.owner:
                    self.superseded[shard].add(last.owner)
            self.raw[key], self.latest[shard] = data, seen
            self.changes += 1


class Worker:
    """A fleet_child.py process and what it is doing."""

    def __init__(self, fleet: Fleet, process: asyncio.subprocess.Process) -> None:
        self.fleet = fleet
        self.process = process
        self.ready = False
        self.shard: int | None = None
        self.run: Run | None = None
        self.frozen_at: float | None = None
        self.frozen_run: Run | None = None
        self.frozen_seen: Seen | None = None
        self.reader = asyncio.create_task(self._read())

    @property
    def busy(self) -> bool:
        return self.shard is not None

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.fleet.heard(self, line.decode().rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()


class Fleet:
    """Runs every shard to completion over *workers* processes, with seeded chaos.

    Args:
        spec: What fleet_child.py gets (store, items, every, work).
        directory: Where the children keep their logs and sinks.
        store: The watching side's store (the same as the workers').
        rng: Picks the moments, the victims and kill or stop.
        stop_share: The share of chaos events that freeze a worker instead of killing it.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        directory: Path,
        store: Store,
        rng: random.Random,
        *,
        shards: int,
        workers: int,
        stop_share: float,
        pause: tuple[float, float],
    ) -> None:
        self.spec, self.directory, self.rng = spec, directory, rng
        self.shards, self.size = shards, workers
        self.stop_share, self.pause = stop_share, pause
        self.watch = Watch(store, shards)
        self.pending: deque[int] = deque(range(shards))
        self.done: set[int] = set()
        self.runs: list[Run] = []
        self.unstarted: list[Run] = []
        self.active: list[Worker] = []
        self.spares: list[Worker] = []
        self.zombies: list[Worker] = []
        self.retired: list[Worker] = []
        self.warnings: list[str] = []
        self.kills = self.stops = self.spawned = 0
        self._stderr: IO[bytes] | None = None

    # -- what the workers say -------------------------------------------------------------

    def heard(self, worker: Worker, line: str) -> None:
        what, _, rest = line.partition(" ")
        if what == "ready":
            worker.ready = True
        elif what == "start":
            shard, name, cursor = rest.split()
            worker.run = Run(int(shard), name, int(cursor), time.monotonic())
            self.runs.append(worker.run)
        elif what == "ended":
            shard, name, kind, detail = [*rest.split(" ", 3), ""][:4]
            run = next((r for r in reversed(self.runs) if r.name == name), None)
            if run is None:  # it ended before it took the key over
                run = Run(int(shard), name, -1, time.monotonic(), unstarted=True)
                self.unstarted.append(run)
            run.fate, run.detail = kind, detail
            worker.run = None
            worker.shard = None
            if kind == "completed":
                self.done.add(int(shard))
            elif not run.zombie and int(shard) not in self.done:
                self.pending.appendleft(int(shard))
            if worker in self.zombies:
                worker.close_stdin()  # a zombie's run is over: it leaves the fleet
        elif what == "warning":
            self.warnings.append(rest)

    # -- the fleet ------------------------------------------------------------------------

    async def _spawn(self) -> None:
        """Start a spare worker: a replacement takes over at once, not after its start-up."""
        assert self._stderr is not None
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            json.dumps(self.spec),
            str(self.directory),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
        )
        self.spares.append(Worker(self, process))
        self.spawned += 1

    async def _replace(self) -> None:
        """Put a spare to work (a ready one if there is one) and start another spare."""
        spare = next((w for w in self.spares if w.ready), self.spares[0])
        self.spares.remove(spare)
        self.active.append(spare)
        await self._spawn()

    def _assign(self) -> None:
        for worker in self.active:
            while not worker.busy and self.pending:
                shard = self.pending.popleft()
                if shard in self.done:
                    continue
                worker.shard = shard
                worker.send(f"run {shard}")

    async def _kill(self, worker: Worker) -> None:
        worker.process.kill()
        await worker.process.wait()
        await worker.reader  # what it printed before it died counts
        self.active.remove(worker)
        self.retired.append(worker)
        self.kills += 1
        if worker.run is not None:
            worker.run.fate = "killed"
        if worker.shard is not None and worker.shard not in self.done:
            self.pending.appendleft(worker.shard)
        await self._replace()

    async def _freeze(self, worker: Worker) -> None:
        assert worker.run is not None
        assert worker.shard is not None
        shard = worker.shard  # its run may end (a line already on the pipe) while we poll
        worker.process.send_signal(signal.SIGSTOP)
        worker.run.zombie = True
        worker.frozen_run = worker.run
        worker.frozen_at = time.monotonic()
        # A zombie before the first await: if the end of its run is heard meanwhile, its
        # stdin is closed, so that it leaves the fleet once woken.
        self.active.remove(worker)
        self.zombies.append(worker)
        self.stops += 1
        self.pending.appendleft(shard)
        await self.watch.poll()  # what the record said when the worker froze
        worker.frozen_seen = self.watch.latest.get(shard)
        await self._replace()

    def _wake(self) -> None:
        now = time.monotonic()
        for zombie in self.zombies:
            if zombie.frozen_at is None or zombie.frozen_run is None:
                continue
            seen = self.watch.latest.get(zombie.frozen_run.shard)
            frozen = zombie.frozen_seen
            moved_on = seen is not None and (
                frozen is None
                or (
                    seen.owner != frozen.owner
                    and (seen.cursor > frozen.cursor or seen.status == "completed")
                )
            )
            if moved_on or now - zombie.frozen_at > MAX_FREEZE:
                zombie.frozen_run.woke = "moved-on" if moved_on else "deadline"
                zombie.frozen_run.woke_at = now
                zombie.frozen_at = None
                zombie.process.send_signal(signal.SIGCONT)

    async def _chaos(self) -> None:
        # Workers whose run has taken its shard over: a kill during the start-up or the claim
        # costs a restart and tests little.
        working = [w for w in self.active if w.run is not None]
        if not working:
            return
        victim = self.rng.choice(working)
        frozen = sum(z.process.returncode is None for z in self.zombies)
        if self.rng.random() < self.stop_share and frozen < MAX_ZOMBIES:
            await self._freeze(victim)
        else:
            await self._kill(victim)

    async def run(self, *, chaos_for: float, deadline: float) -> None:
        """Run until every shard has completed, with chaos for *chaos_for* seconds from the
        first run's start."""
        began = time.monotonic()
        with (self.directory / "stderr.log").open("ab") as self._stderr:
            try:
                for _ in range(self.size + SPARES):
                    await self._spawn()
                for _ in range(self.size):
                    await self._replace()
                await self._supervise(began, chaos_for, deadline)
                await self._drain(began + deadline)
            finally:
                for worker in [*self.active, *self.spares, *self.zombies]:
                    if worker.process.returncode is None:
                        worker.process.send_signal(signal.SIGCONT)
                        worker.process.kill()
                    await worker.process.wait()

    async def _supervise(self, began: float, chaos_for: float, deadline: float) -> None:
        first: float | None = None
        next_chaos = 0.0
        while len(self.done) < self.shards:
            now = time.monotonic()
            self._check(now - began > deadline, "every shard completes")
            self._assign()
            await self.watch.poll()
            self._wake()
            if first is None and self.runs:
                first = next_chaos = now
            if first is not None and now >= next_chaos and now - first < chaos_for:
                await self._chaos()
                next_chaos = now + self.rng.uniform(*self.pause)
            await asyncio.sleep(0.01)  # a poll every 10 ms at most: the workers need the CPU

    async def _drain(self, deadline: float) -> None:
        """Let every worker and zombie finish; keep watching until they have."""
        for worker in [*self.active, *self.spares]:
            worker.close_stdin()
        while any(
            w.process.returncode is None for w in [*self.active, *self.spares, *self.zombies]
        ):
            self._check(time.monotonic() > deadline, "the workers and zombies exit")
            await self.watch.poll()
            self._wake()
            await asyncio.sleep(0.01)
        for worker in [*self.active, *self.spares, *self.zombies]:
            await worker.reader
        await self.watch.poll()

    def _check(self, late: bool, what: str) -> None:
        if late:
            stderr = (self.directory / "stderr.log").read_text()[-3000:]
            raise AssertionError(f"not in time: {what}; done {sorted(self.done)}\n{stderr}")


def blocked_takeovers(runs: list[Run]) -> int:
    """Zombies woken at the deadline whose shard no other run had taken over by then."""
    return sum(
        not any(r.shard == z.shard and z.started < r.started < z.woke_at for r in runs)
        for z in runs
        if z.woke == "deadline"
    )


def successors(runs: list[Run], shard: int) -> list[tuple[Run, int | None]]:
    """The shard's runs in the order they started, each with where the next one resumed."""
    chain = [run for run in runs if run.shard == shard]
    return [
        (run, chain[i + 1].cursor if i + 1 < len(chain) else None) for i, run in enumerate(chain)
    ]
