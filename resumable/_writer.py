"""The writer: the one owner of a run's store calls.

It claims the key (load, quarantine, take ownership), writes records with a fencing check,
runs the routine saves (timer, every N yields, coalesced, at most one in flight) and takes
urgent saves (migration, abort, signals, the last save), which never wait behind a routine
one: an urgent request abandons the routine attempt in flight. Nor do they wait for a
delivery of outputs: a routine save delivers after its write, and an urgent one writes its
record (the outputs pending in it) and leaves the delivery to its caller or to a task.

Fencing is by claim generation: every claim raises the key's generation by one, a write is
accepted only over a record of the same generation and owner, and a run that finds an older
generation's write landed over its own (a store that cannot check atomically) writes its own
state back instead of giving up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from resumable._claim import take_over
from resumable._codec import Codec
from resumable._commit import Commit, Draft
from resumable._effects import Effects, make
from resumable._envelope import check_owner
from resumable._errors import CursorTypeError, ResumableError, SinkError, StoreError
from resumable._record import Record, Status, owner_id
from resumable._retry import retrying
from resumable._stores import Store
from resumable._timing import Timing

log = logging.getLogger("resumable")


class Writer:
    """Every store call of one run of one key.

    Attributes:
        timing: The run's budgets and backoff, which bound its every store call.
        seq: The ``seq`` of the latest write.
        generation: The claim generation this run holds.
        saves: Writes made.
        persisted: The snapshot of the latest write.
        status: The status of the latest write.
    """

    def __init__(
        self,
        key: str,
        store: Store,
        codec: Codec[Any],
        *,
        quarantine: bool,
        timing: Timing,
        commit: Commit | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.timing = timing
        self.codec = codec
        self.commit = commit
        self.quarantine = quarantine
        self.owner = owner_id()
        self.effects: dict[str, Effects] = {}  # by record field, made on first use
        self.seq = 0
        self.generation = 0
        self.saves = 0
        self.persisted: Any = None
        self.status: Status = "running"
        self._closed = False
        self._urgent = 0
        self._urgent_lock = asyncio.Lock()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._wake = asyncio.Event()
        self._routine: asyncio.Timeout | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop_task: asyncio.Task[None] | None = None
        self._failed: Callable[[ResumableError], None] | None = None
        self._cycled = asyncio.Event()  # set each time a routine save attempt ends
        self._held: dict[str, Any] = {}  # the effects' fields the latest write held
        self._wrote: tuple[int, str, bytes] | None = None  # the latest record that landed

    @property
    def busy(self) -> bool:
        """Whether a save is in flight or waiting for one (a delivery is not a save)."""
        return bool(self._urgent) or not self._idle.is_set()

    @property
    def pending(self) -> bool:
        """Whether a routine save was asked for and has not started yet."""
        return self._wake.is_set() and not self._closed and self._loop_task is not None

    # -- claiming ---------------------------------------------------------------------

    async def claim(self, fresh: Any) -> Record[Any] | None:
        """Load the key's record and take ownership of it (see `resumable._claim`).

        Args:
            fresh: The snapshot to write on a fresh start.

        Returns:
            The record the run resumes from, or ``None`` on a fresh start.
        """
        timing = self.timing
        deadline = asyncio.get_running_loop().time() + timing.claim
        taken = await retrying(
            lambda: take_over(self, fresh, deadline),
            deadline=deadline,
            describe=lambda: f"Taking ownership of job {self.key!r} in {self.store!r}",
            refused_for=timing.claim_refused,
            timing=timing,
        )
        self.seq, self.generation, self.saves = taken.seq, taken.generation, self.saves + 1
        self.persisted, self.status = taken.snapshot, "running"
        self._held = self.effect_fields()
        return taken.record

    def effect_fields(self) -> dict[str, Any]:
        """What a record written now holds of each of the run's side effects, by field."""
        return {name: effect.field() for name, effect in self.effects.items()}

    def effects_of(self, name: str) -> Effects:
        """The run's side effects of record field *name* (``"charges"``), made on first use."""
        made = self.effects.get(name)
        if made is None:
            made = self.effects[name] = make(name, self.key, self.owner)
        return made

    async def load(self) -> bytes | None:
        """Load the key's record bytes, checking that the store kept to its protocol."""
        data: object = await self.store.load(self.key)
        if data is None or isinstance(data, bytes):
            return data
        if isinstance(data, bytearray | memoryview):
            return bytes(data)
        raise StoreError(
            f"{self.store!r}.load({self.key!r}) returned a {type(data).__name__}, not bytes or "
            "None. A store's load() returns the record's bytes exactly as saved; fix the "
            "store adapter."
        )

    # -- writing ----------------------------------------------------------------------

    async def _write(self, snapshot: Any, status: Status, deadline: float, *, final: bool) -> bool:
        """Write *snapshot* with *status* unless the store holds exactly that already.

        With an outbox, the record also takes the outputs covered by *snapshot*, and once it
        has landed they are delivered to the sink (`resumable._commit`).
        """
        commit = self.commit
        draft = commit.draft(everything=status == "completed") if commit is not None else None
        if status == "completed":  # the end covers what the work asked for after its cursor
            for effect in self.effects.values():
                effect.take()
        fields = self.effect_fields()
        unchanged = snapshot is self.persisted and status == self.status
        if unchanged and not (commit is not None and commit.news(draft)) and fields == self._held:
            return False
        seq = self.seq + 1
        unstorable: CursorTypeError | None = None
        try:
            data = self._encode(snapshot, status, seq, draft, fields)
        except CursorTypeError as exc:
            if not final:
                raise
            # The last save still records that the run failed, at the last good cursor,
            # without the outputs of the cursor it could not store.
            unstorable, snapshot, status = exc, self.persisted, "failed"
            draft = commit.draft(everything=False, take=False) if commit is not None else None
            data = self._encode(snapshot, status, seq, draft, fields)
        # Spent once tried: a write may land without returning (cut off for an urgent save,
        # or its reply lost), and the next one must take a later seq.
        self.seq = seq
        await retrying(
            lambda: self.store.save(self.key, data, guard=self._guard),
            deadline=deadline,
            describe=lambda: f"Saving the state of job {self.key!r} in {self.store!r}",
            timing=self.timing,
        )
        self.saves, self.persisted, self.status = self.saves + 1, snapshot, status
        self._wrote = (self.generation, self.owner, data)
        log.debug("job %r: saved seq %d (%s)", self.key, seq, status)
        if commit is not None:
            commit.landed(draft)
        for name, field in fields.items():
            self.effects[name].landed(field)
        self._held = fields
        if unstorable is not None:
            raise unstorable
        return True

    def _encode(
        self, snapshot: Any, status: Status, seq: int, draft: Draft | None, fields: dict[str, Any]
    ) -> bytes:
        return self.codec.encode(
            snapshot,
            status=status,
            seq=seq,
            owner=self.owner,
            generation=self.generation,
            outbox=draft.field() if draft is not None else None,
            effects=fields,
        )

    async def deliver(self, deadline: float) -> None:
        """Deliver the outputs that the latest record holds and the sink does not yet.

        Only after a write of this run landed (a taken-over run finds out there), and never
        inside a routine save's scope: an urgent save must not cut a delivery short (a
        dataset push cut mid-flight may still land after the engine has read it back).

        Raises:
            SinkError: The sink still failed at *deadline*; the items stay pending.
            ResumableError: Something else wrote the sink.
        """
        if self.commit is not None:
            await self.commit.deliver(deadline)
        for effect in self.effects.values():
            await effect.deliver(deadline)

    def deliver_later(self) -> None:
        """Deliver the outputs that the latest record holds in a task of the commit's own.

        What a stop does once its record has landed: it returns at once, and the delivery
        goes on while the run ends (the last save delivers too, within the stop's budget).
        """
        if self.commit is not None:
            self.commit.deliver_later(self.timing.save, self._report)

    def _report(self, exc: Exception) -> bool:
        """Log a failure the next save may get past; fail the run on any other (``True``)."""
        if isinstance(exc, StoreError):
            what = "delivery" if isinstance(exc, SinkError) else "periodic save"
            log.warning("job %r: %s failed, will try again: %s", self.key, what, exc)
            return False
        if not isinstance(exc, ResumableError):
            exc = StoreError(f"The writer of job {self.key!r} failed: {exc!r}")
        if self._failed is not None:
            self._failed(exc)
        return True

    async def _check_ownership(self, deadline: float) -> None:
        """With nothing new to write, still find out soon whether another run took over.

        One load of the record (the cost of a read, once a routine save has nothing to do);
        the same check as a write's guard.

        Raises:
            StaleWriterError: Another run owns the key now, or it was deleted.
        """
        current = await retrying(
            self.load,
            deadline=deadline,
            describe=lambda: f"Checking the ownership of job {self.key!r} in {self.store!r}",
            timing=self.timing,
        )
        self._guard(current)

    def _guard(self, current: bytes | None) -> None:
        if self._wrote == (self.generation, self.owner, current):
            return  # our own latest record, whose outputs make it long to parse
        check_owner(current, self.key, self.store, generation=self.generation, owner=self.owner)

    async def urgent(
        self, latest: Callable[[], Any], status: Status, deadline: float, *, final: bool = False
    ) -> bool:
        """Write the latest snapshot now, ahead of any routine save and of any delivery.

        The record holds the outputs the snapshot covers as pending; delivering them is the
        caller's next step (`deliver`, or `deliver_later` for a stop). After the final save
        nothing writes: later requests return ``False``.

        Raises:
            StoreError: The store still failed at *deadline*.
            StaleWriterError: Another run took the key over.
            CursorTypeError: The cursor cannot be serialized.
        """
        self._urgent += 1
        self._quiet.clear()
        try:
            async with self._urgent_lock:
                if self._closed:
                    return False
                self._closed = final
                if self._routine is not None:
                    self._routine.reschedule(asyncio.get_running_loop().time())
                await self._idle.wait()
                if self.commit is not None:
                    await self.commit.ready(deadline)
                return await self._write(latest(), status, deadline, final=final)
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._quiet.set()

    # -- routine saves ----------------------------------------------------------------

    def start(
        self,
        latest: Callable[[], Any],
        interval: float | None,
        failed: Callable[[ResumableError], None],
    ) -> None:
        """Start the routine saves: on `wake` and every *interval* seconds.

        *failed* is told of a failure that ends the run (fencing, the codec, a foreign sink).
        """
        self._failed = failed
        self._loop_task = asyncio.create_task(
            self._routine_loop(latest, interval), name=f"resumable-writer:{self.key}"
        )

    def wake(self) -> None:
        """Ask for a routine save of the latest snapshot soon (coalesced)."""
        self._wake.set()

    async def catch_up(self) -> None:
        """Ask for a routine save and wait until an attempt has ended (or the saves stopped).

        The back-pressure of a full outbox: the job waits here, at a cursor, rather than
        push more than a record can hold.
        """
        task = self._loop_task
        if task is None or task.done() or self._closed:
            return
        self._cycled.clear()
        self.wake()
        waiter = asyncio.ensure_future(self._cycled.wait())
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        """Stop the routine saves and deliveries (those in flight are abandoned).

        A delivery abandoned here is settled by the next run, which reads the sink back.
        """
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if self.commit is not None:
            await self.commit.stop()

    async def _routine_loop(self, latest: Callable[[], Any], interval: float | None) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await _wait(self._wake, interval)
            self._wake.clear()
            await self._quiet.wait()
            if self._closed:
                return
            deadline = loop.time() + self.timing.save
            try:
                await self._routine_write(latest, deadline)
                # Outside the write's scope, and with the writer idle: an urgent save goes
                # ahead of the delivery, and never cuts it short.
                await self.deliver(deadline)
            except Exception as exc:  # noqa: BLE001 - any failure of the writer is reported
                if self._report(exc):
                    return
            finally:
                self._cycled.set()

    async def _routine_write(self, latest: Callable[[], Any], deadline: float) -> None:
        """One routine write, which an urgent save abandons (it writes the latest itself)."""
        commit = self.commit
        if commit is not None and commit.outbox.behind:
            return  # the sink is behind: deliver what the records hold before taking more
        self._idle.clear()
        scope = self._routine = asyncio.timeout(None)
        try:
            async with scope:
                if commit is not None:
                    await commit.ready(deadline)
                if not await self._write(latest(), "running", deadline, final=False):
                    await self._check_ownership(deadline)
        except TimeoutError:
            if not scope.expired():
                raise
        finally:
            self._routine = None
            self._idle.set()


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    if timeout is None:
        await event.wait()
        return
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
