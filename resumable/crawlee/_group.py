"""Group commit: one store write for every request that finished while the last one was made.

A request that finished waits in `GroupCommit.commit`. One task takes everything waiting,
writes the journal's next version through the job (`Job.commit`), and, once it has landed,
delivers it (`Journal.deliver`); then it tells every request of the group whether it was
committed, and takes the next group. Delivering before the next write keeps the journal's
datasets in step with the record, as the writer does for an outbox.

The first write that fails ends the commits of the run: a store that failed after its
retries, another run that took the key over, or a stop that cut the work. Every request not
yet committed is told so and is handled again by the next run; nothing of it is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from resumable._errors import ResumableError, StoreError
from resumable._timing import Timing
from resumable.crawlee._journal import Finished, Journal

log = logging.getLogger("resumable")

GROUP = 200
"""Requests one store write commits at most (a record holds their items until delivered)."""

WINDOW = 0.05
"""Seconds a group stays open for more requests after its first, unless the run is stopping.

Nothing waits for a group but the marks in the queue (a crawler's request slot is free as
soon as its handler returned), so a group left open costs no throughput, and each write it
saves is one record encoded and fsynced less for the event loop."""


class Committing(Protocol):
    """What a group commit needs of the job whose cursor the journal is (`resumable.Job`)."""

    @property
    def deadline(self) -> float | None:
        """The loop time by which a stop's saves must land, if a stop set one."""
        ...

    @property
    def timing(self) -> Timing:
        """The run's budgets: a delivery without a stop's deadline gets its save budget."""
        ...

    async def commit(self, cursor: Any) -> bool:
        """Write *cursor* now; whether a record holding it landed."""
        ...


class GroupCommit:
    """Commits finished requests in groups, one task writing and delivering at a time.

    Attributes:
        failure: Why the commits ended, when a write failed.
        groups: Writes made.
    """

    def __init__(
        self,
        job: Committing,
        journal: Journal,
        *,
        failed: Callable[[], None],
        hurry: Callable[[], bool],
    ) -> None:
        self.failure: ResumableError | None = None
        self.groups = 0
        self._job = job
        self._journal = journal
        self._failed = failed
        self._hurry = hurry
        self._full = asyncio.Event()
        self._waiting: list[tuple[Finished, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._loop(), name=f"resumable-journal:{journal.key}")

    @property
    def backlog(self) -> int:
        """Requests waiting for the next group."""
        return len(self._waiting)

    def submit(self, finished: Finished) -> asyncio.Future[bool]:
        """Put *finished* in the next group; the future says whether it was committed.

        ``False``: the commits have ended, and the request must not be marked handled.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closed:
            done.set_result(False)
            return done
        self._waiting.append((finished, done))
        self._wake.set()
        if len(self._waiting) >= GROUP or self._hurry():
            self._full.set()
        return done

    def flush(self) -> None:
        """Close the open group now (a stop, or the crawl's end): no more waiting for more."""
        self._full.set()

    async def commit(self, finished: Finished) -> bool:
        """Wait until the group holding *finished* has been written and delivered."""
        # Shielded: a request cancelled while it waits leaves its group alone.
        return await asyncio.shield(self.submit(finished))

    async def close(self) -> None:
        """End the commits; whoever still waits is told that nothing was committed."""
        self._closed = True
        self._task.cancel()
        await asyncio.wait([self._task])
        self._refuse()

    def _refuse(self) -> None:
        self._closed = True
        waiting, self._waiting = self._waiting, []
        for _, done in waiting:
            if not done.done():
                done.set_result(False)

    async def _loop(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if not self._hurry():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), WINDOW)
            self._full.clear()
            group, self._waiting = self._waiting[:GROUP], self._waiting[GROUP:]
            if self._waiting:
                self._wake.set()
            if not group:
                continue
            committed = await self._commit([finished for finished, _ in group])
            for _, done in group:
                if not done.done():
                    done.set_result(committed)
            if not committed:
                self._closed = True
        self._refuse()

    async def _commit(self, group: list[Finished]) -> bool:
        journal = self._journal
        try:
            proposal = await journal.propose(group)
            if not await self._job.commit(proposal.snapshot):
                log.info(
                    "job %r: the run stopped recording its journal; %d finished request(s) "
                    "are left to the next run",
                    journal.key,
                    len(group),
                )
                return False
        except ResumableError as exc:
            self._fail(exc)
            return False
        except Exception as exc:  # noqa: BLE001 - any failure of the journal fails the run
            self._fail(StoreError(f"The journal of job {journal.key!r} failed: {exc!r}"))
            return False
        self.groups += 1
        journal.landed(proposal)
        loop = asyncio.get_running_loop()
        deadline = self._job.deadline or loop.time() + self._job.timing.save
        try:
            await journal.deliver(max(deadline, loop.time() + 0.1))
        except ResumableError as exc:
            self._fail(exc)  # committed all the same: the next run delivers
        return True

    def _fail(self, exc: ResumableError) -> None:
        if self.failure is None:
            self.failure = exc
            log.error("job %r: %s", self._journal.key, exc)
            self._failed()
        self._closed = True
