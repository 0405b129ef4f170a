"""The writer: the one owner of a run's store calls.

It claims the key (load, quarantine, take ownership), writes records with a fencing check,
runs the routine saves (timer, every N yields, coalesced, at most one in flight) and takes
urgent saves (migration, abort, signals, the last save), which never wait behind a routine
one: an urgent request abandons the routine attempt in flight.

Fencing is by claim generation: every claim raises the key's generation by one, a write is
accepted only over a record of the same generation and owner, and a run that finds an older
generation's write landed over its own (a store that cannot check atomically) writes its own
state back instead of giving up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from resumable._claim import take_over
from resumable._codec import Codec, parse
from resumable._commit import Commit, Draft
from resumable._errors import CursorTypeError, ResumableError, StaleWriterError, StoreError
from resumable._record import Record, Status
from resumable._retry import retrying
from resumable._stores import Store

log = logging.getLogger("resumable")

SAVE_TIMEOUT = 10.0
"""How long one save keeps retrying a failing store before giving up."""

CLAIM_TIMEOUT = 10.0
"""How long taking ownership of a key at start keeps retrying (an older run may be busy)."""


def owner_id() -> str:
    """Name a run: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Writer:
    """Every store call of one run of one key.

    Attributes:
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
        commit: Commit | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.codec = codec
        self.commit = commit
        self.quarantine = quarantine
        self.owner = owner_id()
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
        self._cycled = asyncio.Event()  # set each time a routine save attempt ends

    @property
    def busy(self) -> bool:
        """Whether a save is in flight or waiting for one."""
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
        deadline = asyncio.get_running_loop().time() + CLAIM_TIMEOUT
        taken = await retrying(
            lambda: take_over(self, fresh, deadline),
            deadline=deadline,
            describe=lambda: f"Taking ownership of job {self.key!r} in {self.store!r}",
        )
        self.seq, self.generation, self.saves = taken.seq, taken.generation, self.saves + 1
        self.persisted, self.status = taken.snapshot, "running"
        return taken.record

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
        unchanged = snapshot is self.persisted and status == self.status
        if unchanged and not (commit is not None and commit.news(draft)):
            return False
        seq = self.seq + 1
        unstorable: CursorTypeError | None = None
        try:
            data = self._encode(snapshot, status, seq, draft)
        except CursorTypeError as exc:
            if not final:
                raise
            # The last save still records that the run failed, at the last good cursor,
            # without the outputs of the cursor it could not store.
            unstorable, snapshot, status = exc, self.persisted, "failed"
            draft = commit.draft(everything=False, take=False) if commit is not None else None
            data = self._encode(snapshot, status, seq, draft)
        # Spent once tried: a write may land without returning (cut off for an urgent save,
        # or its reply lost), and the next one must take a later seq.
        self.seq = seq
        await retrying(
            lambda: self.store.save(self.key, data, guard=self._guard),
            deadline=deadline,
            describe=lambda: f"Saving the state of job {self.key!r} in {self.store!r}",
        )
        self.saves, self.persisted, self.status = self.saves + 1, snapshot, status
        log.debug("job %r: saved seq %d (%s)", self.key, seq, status)
        if commit is not None:
            commit.landed(draft)
        if unstorable is not None:
            await self.deliver(deadline)
            raise unstorable
        return True

    def _encode(self, snapshot: Any, status: Status, seq: int, draft: Draft | None) -> bytes:
        return self.codec.encode(
            snapshot,
            status=status,
            seq=seq,
            owner=self.owner,
            generation=self.generation,
            outbox=draft.field() if draft is not None else None,
        )

    async def deliver(self, deadline: float) -> None:
        """Deliver the outputs that the latest record holds and the sink does not yet.

        Only right after a write of this run landed (a run that was taken over finds out
        there, and delivers nothing), and never inside a routine save's scope: an urgent
        save must not cut a delivery short (a dataset push cut mid-flight may still land
        after the engine has read it back).
        """
        if self.commit is not None:
            await self.commit.deliver(deadline)

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
        )
        self._guard(current)

    def _guard(self, current: bytes | None) -> None:
        if current is None:
            raise StaleWriterError(
                f"The record of job {self.key!r} in {self.store!r} was deleted while the job "
                "ran (a reset?). This run stops rather than write it back; start the job again "
                "to begin from scratch."
            )
        envelope = parse(current, self.key, self.store)
        generation = envelope.get("generation", 0)
        if generation > self.generation or (
            generation == self.generation and envelope["owner"] != self.owner
        ):
            raise StaleWriterError(
                f"Job {self.key!r} in {self.store!r} was taken over by another run "
                f"({envelope['owner']}, seq {envelope['seq']}); this run ({self.owner}) stops "
                "without overwriting its progress. Run one instance per key, or give "
                "concurrent runs different keys."
            )
        if generation < self.generation:
            log.warning(
                "job %r: an older run (%s) wrote %r after this run took the key over; this "
                "run writes its own state back",
                self.key,
                envelope["owner"],
                self.store,
            )

    async def urgent(
        self, latest: Callable[[], Any], status: Status, deadline: float, *, final: bool = False
    ) -> bool:
        """Write the latest snapshot now, ahead of any routine save, then deliver its outputs.

        After the final save nothing writes: later requests return ``False``.

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
                    await self.commit.ready()
                wrote = await self._write(latest(), status, deadline, final=final)
                if wrote:
                    await self.deliver(deadline)
                return wrote
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
        """Start the routine saves: on `wake` and every *interval* seconds."""
        self._loop_task = asyncio.create_task(
            self._routine_loop(latest, interval, failed), name=f"resumable-writer:{self.key}"
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
        """Stop the routine saves (an attempt in flight is abandoned)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _routine_loop(
        self,
        latest: Callable[[], Any],
        interval: float | None,
        failed: Callable[[ResumableError], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await _wait(self._wake, interval)
            self._wake.clear()
            await self._quiet.wait()
            if self._closed:
                return
            self._idle.clear()
            scope = self._routine = asyncio.timeout(None)
            deadline = loop.time() + SAVE_TIMEOUT
            try:
                async with scope:
                    if self.commit is not None:
                        await self.commit.ready()
                    wrote = await self._write(latest(), "running", deadline, final=False)
                    if not wrote:
                        await self._check_ownership(deadline)
                self._routine = None
                if wrote:  # outside the scope: an urgent save never cuts a delivery short
                    await self.deliver(deadline)
            except TimeoutError:
                if not scope.expired():
                    raise
                # Abandoned for an urgent save, which writes the latest cursor itself.
            except StoreError as exc:
                log.warning("job %r: periodic save failed, will try again: %s", self.key, exc)
            except ResumableError as exc:
                failed(exc)
                return
            except Exception as exc:  # noqa: BLE001 - any failure of the writer fails the run
                failed(StoreError(f"The writer of job {self.key!r} failed: {exc!r}"))
                return
            finally:
                self._routine = None
                self._idle.set()
                self._cycled.set()


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    if timeout is None:
        await event.wait()
        return
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
