"""`exactly_once`: a Crawlee crawler whose requests take effect exactly once.

A run is one `resumable.job` whose cursor is the crawl's journal (`resumable.crawlee._journal`):
the engine claims the key (fencing out an older run), saves on stops and at the end, and the
journal's group commits go through `Job.commit`. Around ``crawler.run`` it puts, for the
length of the run, its own hands on the crawler (`resumable.apify._sdk_crawler`):

1. a handler's recorded results are not carried out by the crawler: its requests are added
   to the queue, the rest waits for the group commit, which writes the journal and then
   delivers the group's items, values and charges;
2. the request manager becomes a `JournaledQueue`, which marks a request handled only once
   the journal holds it, and completes from the journal a request committed by an earlier run;
3. the statistics start from the journal's finished and failed counts;
4. a stop of the job (``migrating``, ``aborting``, a signal, a notice) calls ``crawler.stop()``:
   no new request is taken, those in flight finish and are committed within the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from crawlee import Request
from crawlee._types import BasicCrawlingContext, RequestHandlerRunResult
from crawlee.crawlers import BasicCrawler
from crawlee.request_loaders import RequestManager, ThrottlingRequestManager
from crawlee.statistics import FinalStatistics
from crawlee.storages import RequestQueue

from resumable._errors import InvalidOptionError
from resumable._job import job
from resumable._record import Outcome
from resumable._stores import Store
from resumable._triggers import Trigger
from resumable.apify._charges import Asked
from resumable.apify._sdk_crawler import (
    add_requests_of,
    around_handlers,
    journal_results,
    recorded_items,
    request_limit,
    swap_request_manager,
)
from resumable.crawlee._group import GroupCommit
from resumable.crawlee._journal import Finished, Journal, Where, value_change
from resumable.crawlee._queue import JournaledQueue

__all__ = ["ExactlyOnce", "exactly_once"]

log = logging.getLogger("resumable")


def exactly_once(
    crawler: BasicCrawler[Any, Any],
    *,
    key: str = "crawl",
    store: Store | None = None,
    triggers: Iterable[Trigger] | None = None,
) -> ExactlyOnce:
    """Make *crawler*'s requests take effect exactly once, across kills, migrations and aborts.

    Run it with ``await exactly_once(crawler).run(requests)`` instead of
    ``await crawler.run(requests)``. The handlers stay as they are: what they do through
    their context (``push_data``, ``add_requests``/``enqueue_links``, key-value store
    changes, and `resumable.apify.charge`) is committed to a journal in *store* and
    delivered once; a request whose results were committed is never handled again.

    Args:
        crawler: Any Crawlee crawler (a `BasicCrawler` subclass), with its own request queue.
        key: Where the journal lives in *store* (one key per crawl).
        store: The journal's store. Default: the Actor's key-value store inside
            ``async with Actor:``, else ``FileStore(".resumable")``.
        triggers: What stops the run. Default: SIGTERM/SIGINT, and the platform's events
            inside an Actor.
    """
    return ExactlyOnce(crawler, key=key, store=store, triggers=triggers)


class ExactlyOnce:
    """A crawler with a journal; `run` runs it as ``crawler.run`` does.

    Attributes:
        crawler: The crawler.
        key: The journal's key.
        outcome: How the latest run ended (the job's `Outcome`), once it has.
        journal: The latest run's journal.
    """

    def __init__(
        self,
        crawler: BasicCrawler[Any, Any],
        *,
        key: str,
        store: Store | None,
        triggers: Iterable[Trigger] | None,
    ) -> None:
        if not isinstance(crawler, BasicCrawler):
            raise InvalidOptionError(
                f"exactly_once() takes a Crawlee crawler (a BasicCrawler such as ParselCrawler "
                f"or BeautifulSoupCrawler), not {crawler!r}"
            )
        self.crawler = crawler
        self.key = key
        self.outcome: Outcome[dict[str, Any]] | None = None
        self.journal: Journal | None = None
        self._store = store
        self._triggers = None if triggers is None else tuple(triggers)

    def __repr__(self) -> str:
        return f"<ExactlyOnce {type(self.crawler).__name__} key={self.key!r}>"

    async def run(
        self, requests: Sequence[str | Request] | None = None, *, purge_request_queue: bool = True
    ) -> FinalStatistics:
        """Run the crawler as ``crawler.run(requests)`` does, each request exactly once.

        Returns:
            The crawler's final statistics.

        Raises:
            StaleWriterError: Another run of the same key took over; this one committed
                nothing more.
            StoreError: The journal's store kept failing.
        """
        crawler = self.crawler
        manager = await crawler.get_request_manager()
        if isinstance(manager, ThrottlingRequestManager | JournaledQueue):
            raise InvalidOptionError(
                f"exactly_once() cannot run {crawler!r} on a {type(manager).__name__}: give the "
                "crawler a RequestQueue (its default one, or one you opened)."
            )
        fresh: dict[str, Any] = {}
        async with job(
            self.key, cursor=fresh, cursor_type=dict, store=self._store, triggers=self._triggers
        ) as j:
            journal = self.journal = Journal(
                j.key,
                j.store,
                datasets=lambda i, n, a: crawler.get_dataset(id=i, name=n, alias=a),
                stores=lambda i, n, a: crawler.get_key_value_store(id=i, name=n, alias=a),
                timing=j.timing,
            )
            loop = asyncio.get_running_loop()
            await journal.resume(j.cursor, loop.time() + j.timing.save)
            await _forget_handled(journal, manager)
            group = GroupCommit(
                j,
                journal,
                failed=lambda: crawler.stop("resumable: commits ended"),
                hurry=lambda: j.stopping,
            )
            queue = JournaledQueue(manager, journal, group)
            try:
                async with self._hands_on(journal, queue, group, j.on_stop):
                    stats = await crawler.run(requests, purge_request_queue=purge_request_queue)
                    group.flush()
                    await queue.drain()
            finally:
                await group.close()
            if group.failure is not None:
                raise group.failure
            if await manager.is_finished():
                journal.forget(journal.held)
            elif not j.stopping and not _limit_reached(crawler, stats):
                j.stop("the crawler stopped with requests left in its queue (interrupted?)")
            j.advance(journal.snapshot())
        self.outcome = j.outcome
        return stats

    @contextlib.asynccontextmanager
    async def _hands_on(
        self, journal: Journal, queue: JournaledQueue, group: GroupCommit, on_stop: Any
    ) -> AsyncIterator[None]:
        """The crawler as a journaled run needs it, put back as it was afterwards."""
        crawler = self.crawler
        asked: WeakKeyDictionary[BasicCrawlingContext, Asked] = WeakKeyDictionary()

        @contextlib.contextmanager
        def charging(context: BasicCrawlingContext) -> Iterator[None]:
            with journal.ledger.asking() as granted:
                asked[context] = granted
                yield

        async def commit(context: BasicCrawlingContext, result: RequestHandlerRunResult) -> None:
            for call in result.add_requests_calls:
                await add_requests_of(crawler, context, call)
            await queue.submit(_finished(context, result, asked.pop(context, None)))

        undo = [journal_results(crawler, commit), around_handlers(crawler, charging)]
        before: RequestManager = swap_request_manager(crawler, queue)

        def stop() -> None:
            crawler.stop("resumable: the run is stopping")
            group.flush()

        unstop = on_stop(stop)
        try:
            async with _carried_statistics(crawler, journal):
                yield
        finally:
            unstop()
            swap_request_manager(crawler, before)
            for put_back in undo:
                put_back()


def _finished(
    context: BasicCrawlingContext, result: RequestHandlerRunResult, asked: Asked | None
) -> Finished:
    """What a request's handler recorded, as the journal commits it."""
    items: dict[Where, list[Any]] = {}
    for where, item in recorded_items(result):
        items.setdefault(where, []).append(item)
    values = tuple(
        value_change(where, name, change.content, change.content_type)
        for where, changes in result.key_value_store_changes.items()
        for name, change in changes.updates.items()
    )
    return Finished(
        context.request.unique_key,
        "finished",
        items=tuple((where, tuple(found)) for where, found in items.items()),
        values=values,
        asked=asked,
    )


@contextlib.asynccontextmanager
async def _carried_statistics(
    crawler: BasicCrawler[Any, Any], journal: Journal
) -> AsyncIterator[None]:
    """Enter the crawler's statistics, counting from the journal's finished and failed."""
    statistics = crawler.statistics
    async with contextlib.AsyncExitStack() as stack:
        if not statistics.active:
            await stack.enter_async_context(statistics)
        statistics.state.requests_finished = journal.finished
        statistics.state.requests_failed = journal.failed
        yield


async def _forget_handled(journal: Journal, manager: RequestManager) -> None:
    """Leave out of the journal what the queue marked handled before the last run ended."""
    if not isinstance(manager, RequestQueue):
        return
    handled = []
    for key in journal.held:
        request = await manager.get_request(key)
        if request is None or request.handled_at is not None:
            handled.append(key)
    journal.forget(handled)


def _limit_reached(crawler: BasicCrawler[Any, Any], stats: FinalStatistics) -> bool:
    limit = request_limit(crawler)
    return limit is not None and stats.requests_total >= limit
