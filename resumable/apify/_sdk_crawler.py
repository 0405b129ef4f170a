"""Every use of the private internals of Crawlee's crawlers, and nowhere else.

The same rule as `resumable.apify._sdk`, for what `resumable.crawlee` needs of a
`BasicCrawler` that its public API does not offer:

- ``_commit_request_handler_result(context)``: where the crawler, after a handler returned,
  carries out what the handler recorded (its ``push_data``, ``add_requests`` and key-value
  store changes). It is replaced on the crawler instance, so that a journal commits them.
- ``_context_result_map``: the `RequestHandlerRunResult` recorded for each context.
- ``_add_requests(context, **call)``: how the crawler turns one recorded ``add_requests`` call
  into requests (absolute URLs, the enqueue strategy, include/exclude, the crawl depth).
- ``_run_request_handler(context)``: the handler's run, wrapped so that what it charges is
  known to be that request's.
- ``_request_manager``: the crawler's request manager, replaced by a journaled wrapper for
  the length of a run (the constructor's ``request_manager=`` is the public way, but the
  crawler already exists).

Each is pinned by ``tests/test_apify_sdk.py``; a moved one raises `ResumableError` at once
(never a silent fallback: without these the crawl would not be exactly once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from crawlee._types import BasicCrawlingContext, RequestHandlerRunResult
from crawlee.crawlers import BasicCrawler
from crawlee.request_loaders import RequestManager

from resumable._errors import ResumableError

__all__ = [
    "add_requests_of",
    "around_handlers",
    "journal_results",
    "recorded_items",
    "request_limit",
    "swap_request_manager",
]

_COMMIT = "_commit_request_handler_result"
_RESULTS = "_context_result_map"
_ADD = "_add_requests"
_RUN_HANDLER = "_run_request_handler"
_MANAGER = "_request_manager"

Commit = Callable[[BasicCrawlingContext, RequestHandlerRunResult], Awaitable[None]]


def _moved(what: str) -> ResumableError:
    return ResumableError(
        f"resumable could not find {what} in the installed Crawlee, so it cannot make this "
        "crawler exactly once. Install the versions resumable supports (`pip install "
        '"resumable-jobs[apify]"`) or report this to resumable with your `pip show crawlee`.'
    )


def _method(crawler: BasicCrawler[Any, Any], name: str) -> Callable[..., Any]:
    found: Callable[..., Any] | None = getattr(crawler, name, None)
    if not callable(found):
        raise _moved(f"the crawler's `{name}`")
    return found


def _replace(crawler: BasicCrawler[Any, Any], name: str, value: object) -> Callable[[], None]:
    """Put *value* in place of the method *name* on this crawler instance; return the undo."""
    attributes = vars(crawler)
    before = attributes.get(name)
    attributes[name] = value

    def undo() -> None:
        if before is None:
            attributes.pop(name, None)
        else:
            attributes[name] = before

    return undo


def journal_results(crawler: BasicCrawler[Any, Any], commit: Commit) -> Callable[[], None]:
    """Have *commit* carry out each handler's recorded results instead of the crawler.

    Returns:
        What puts the crawler's own commit back.
    """
    _method(crawler, _COMMIT)
    results = getattr(crawler, _RESULTS, None)
    if results is None or not hasattr(results, "__getitem__"):
        raise _moved(f"the crawler's `{_RESULTS}`")

    async def commit_result(context: BasicCrawlingContext) -> None:
        await commit(context, results[context])

    return _replace(crawler, _COMMIT, commit_result)


def around_handlers(
    crawler: BasicCrawler[Any, Any],
    scope: Callable[[BasicCrawlingContext], AbstractContextManager[None]],
) -> Callable[[], None]:
    """Run each request's handler (its whole context pipeline) inside ``scope(context)``."""
    original = _method(crawler, _RUN_HANDLER)

    async def run_request_handler(context: BasicCrawlingContext) -> None:
        with scope(context):
            await original(context=context)

    return _replace(crawler, _RUN_HANDLER, run_request_handler)


async def add_requests_of(
    crawler: BasicCrawler[Any, Any], context: BasicCrawlingContext, call: Any
) -> None:
    """Add the requests of one recorded ``add_requests`` call, as the crawler would."""
    await _method(crawler, _ADD)(context, **call)


def swap_request_manager(
    crawler: BasicCrawler[Any, Any], manager: RequestManager
) -> RequestManager:
    """Make *manager* the crawler's request manager; return the one it had."""
    attributes = vars(crawler)
    if _MANAGER not in attributes:
        raise _moved(f"the crawler's `{_MANAGER}`")
    before: RequestManager = attributes[_MANAGER]
    attributes[_MANAGER] = manager
    return before


def recorded_items(result: RequestHandlerRunResult) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Each item a handler pushed, with the (id, name, alias) of its dataset, in push order."""
    for call in result.push_data_calls:
        where = (call.get("dataset_id"), call.get("dataset_name"), call.get("dataset_alias"))
        data = call["data"]
        if isinstance(data, Mapping):
            yield where, data
        else:
            for item in data:
                yield where, item


def request_limit(crawler: BasicCrawler[Any, Any]) -> int | None:
    """The crawler's ``max_requests_per_crawl``."""
    attributes = vars(crawler)
    if "_max_requests_per_crawl" not in attributes:
        raise _moved("the crawler's `_max_requests_per_crawl`")
    limit: int | None = attributes["_max_requests_per_crawl"]
    return limit
