"""`JournaledQueue`: the crawler's own request manager, marking requests handled by the journal.

It passes everything through to the queue it wraps, with three differences:

- A request is marked handled only once the journal holds it as committed and its results
  are delivered. The crawler's mark returns at once, and the mark is made when the request's
  group commit has landed, so a crawler's request slot is never held by a store write: the
  crawler goes on at full speed while one write commits everything that finished meanwhile.
  A request that failed for good, was skipped or replaced is committed at the mark too, so
  that the failed count is the journal's. A request whose commit did not happen (the run
  stopped) stays unhandled, for the next run; the queue is not finished while marks wait.
- A request the queue hands out again while the journal holds it (committed by a run that
  ended before the queue marked it) is marked handled at once and never reaches the crawler.
- Adding requests waits until every batch is in the queue, so none is lost to a kill after
  the commit that follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from crawlee import Request, RequestState
from crawlee.request_loaders import RequestManager
from crawlee.storage_clients.models import ProcessedRequest

from resumable.crawlee._group import GroupCommit
from resumable.crawlee._journal import Finished, Journal, Kind

log = logging.getLogger("resumable")

BACKLOG = 1000
"""Requests waiting for a group commit past which a finished request waits for its own."""

_KINDS: dict[RequestState, Kind] = {
    RequestState.DONE: "finished",
    RequestState.ERROR_HANDLER: "finished",  # replaced by its error handler: Crawlee counts it so
    RequestState.ERROR: "failed",
}


class JournaledQueue(RequestManager):
    """Wraps the crawler's request manager for one exactly-once run.

    Args:
        inner: The request manager the crawler had.
        journal: The run's journal.
        group: The run's group commit.
    """

    def __init__(self, inner: RequestManager, journal: Journal, group: GroupCommit) -> None:
        self.inner = inner
        self._journal = journal
        self._group = group
        self._submitted: dict[str, asyncio.Future[bool]] = {}
        self._marking: set[asyncio.Task[None]] = set()
        self.completed = 0  # requests completed from the journal in this run

    async def submit(self, finished: Finished) -> None:
        """Commit what a finished request did with the next group; its mark waits for it.

        Waits only when more requests wait for a group than the crawler has in flight many
        times over: the store cannot keep up, and the crawler must slow down to it.
        """
        done = self._submitted[finished.key] = self._group.submit(finished)
        if self._group.backlog > BACKLOG:
            await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait for the marks still waiting for their commits."""
        while self._marking:
            await asyncio.wait(list(self._marking))

    async def fetch_next_request(self) -> Request | None:
        """The next request to handle; one the journal holds as committed is completed here."""
        while True:
            request = await self.inner.fetch_next_request()
            if request is None or not self._journal.holds(request.unique_key):
                return request
            log.info(
                "job %r: %s was committed by an earlier run; completing it from the journal "
                "instead of handling it again",
                self._journal.key,
                request.url,
            )
            await self.inner.mark_request_as_handled(request)
            self._journal.forget([request.unique_key])
            self.completed += 1

    async def mark_request_as_handled(self, request: Request) -> ProcessedRequest | None:
        """Mark *request* handled once the journal holds it as committed (see the module)."""
        key = request.unique_key
        done = self._submitted.pop(key, None)
        if request.state != RequestState.DONE:
            done = self._group.submit(Finished(key, _KINDS.get(request.state, "other")))
        elif done is None and not self._journal.holds(key):
            return None  # its results were never submitted: the next run handles it again
        task = asyncio.create_task(self._mark(request, done))
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)
        return None

    async def _mark(self, request: Request, committed: asyncio.Future[bool] | None) -> None:
        if committed is not None and not await committed:
            return  # not committed: the next run handles it again
        try:
            await self.inner.mark_request_as_handled(request)
        except Exception as exc:  # noqa: BLE001 - the journal holds it: the next run completes it
            log.warning(
                "job %r: marking %s handled failed (%r); the journal holds it, and the next run "
                "completes it",
                self._journal.key,
                request.url,
                exc,
            )
            return
        self._journal.forget([request.unique_key])

    async def add_requests(
        self,
        requests: Sequence[str | Request],
        *,
        forefront: bool = False,
        batch_size: int = 1000,
        wait_time_between_batches: timedelta = timedelta(seconds=1),
        wait_for_all_requests_to_be_added: bool = False,
        wait_for_all_requests_to_be_added_timeout: timedelta | None = None,
    ) -> None:
        """Add *requests*, every batch of them before returning."""
        await self.inner.add_requests(
            requests,
            forefront=forefront,
            batch_size=batch_size,
            wait_time_between_batches=wait_time_between_batches,
            wait_for_all_requests_to_be_added=True,
            wait_for_all_requests_to_be_added_timeout=wait_for_all_requests_to_be_added_timeout,
        )

    async def add_request(
        self, request: str | Request, *, forefront: bool = False
    ) -> ProcessedRequest | None:
        """Add one request."""
        return await self.inner.add_request(request, forefront=forefront)

    async def reclaim_request(
        self, request: Request, *, forefront: bool = False
    ) -> ProcessedRequest | None:
        """Give a request back for another attempt."""
        return await self.inner.reclaim_request(request, forefront=forefront)

    async def drop(self) -> None:
        """Drop the queue."""
        await self.inner.drop()

    async def purge(self) -> None:
        """Remove the queued requests."""
        await self.inner.purge()

    async def get_handled_count(self) -> int:
        """Requests handled so far."""
        return await self.inner.get_handled_count()

    async def get_total_count(self) -> int:
        """Requests in the queue, handled or not."""
        return await self.inner.get_total_count()

    async def is_empty(self) -> bool:
        """Whether no request is waiting."""
        return await self.inner.is_empty()

    async def is_finished(self) -> bool:
        """Whether every request is handled, its mark made."""
        return not self._marking and await self.inner.is_finished()
