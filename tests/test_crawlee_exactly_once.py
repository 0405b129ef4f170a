"""`resumable.crawlee.exactly_once` on a real crawler, in this process, on local storage.

Crashes and restarts are in ``test_crawlee_soak.py`` (real processes); here: what one run
commits and delivers, what it does with a journal an earlier run left, stops, fencing.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crawlee import ConcurrencySettings, Request
from crawlee.configuration import Configuration
from crawlee.crawlers import BasicCrawler, BeautifulSoupCrawler, BeautifulSoupCrawlingContext
from crawlee.events import LocalEventManager
from crawlee.storage_clients import FileSystemStorageClient
from graph_shop import Shop
from helpers import wait_until

from resumable import FileStore, InvalidOptionError, StaleWriterError, job
from resumable._controls import Controls
from resumable.crawlee import exactly_once

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[Shop]:
    with Shop(pages=3, per_page=10) as shop:
        yield shop.start()


def make_crawler(storage: Path, *, concurrency: int = 8, **options: Any) -> BeautifulSoupCrawler:
    """A crawler on local storage of its own in *storage*."""
    return BeautifulSoupCrawler(
        parser="html.parser",
        configuration=Configuration(storage_dir=str(storage), purge_on_start=False),
        storage_client=FileSystemStorageClient(),
        event_manager=LocalEventManager(),
        configure_logging=False,
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency,
            desired_concurrency=concurrency,
            max_concurrency=concurrency,
        ),
        **options,
    )


class Seen:
    """The URLs the handler was called for."""

    def __init__(self) -> None:
        self.urls: Counter[str] = Counter()


def shop_handler(crawler: BeautifulSoupCrawler, seen: Seen) -> None:
    """Products into the default dataset and their prices into the key-value store; each
    listing page into a named dataset."""

    @crawler.router.default_handler
    async def handle(context: BeautifulSoupCrawlingContext) -> None:
        seen.urls[context.request.url] += 1
        await context.enqueue_links(selector="a.product, a.next, a.list")
        number = context.request.url.rsplit("/", 1)[1]
        if "/product/" in context.request.url:
            await context.push_data({"product": int(number)})
            prices = await context.get_key_value_store()
            await prices.set_value(f"price-{number}", {"price": int(number) * 3 % 100})
        else:
            await context.push_data([{"listing": int(number)}], dataset_name="listings")


async def items(crawler: BasicCrawler[Any, Any], name: str | None = None) -> list[Any]:
    return list((await (await crawler.get_dataset(name=name)).get_data(limit=10_000)).items)


def _default_dataset(journal: dict[str, Any]) -> tuple[int, list[Any]]:
    """What the journal says of the default dataset: delivered count and pending items."""
    found = next(d for d in journal["datasets"] if d["dataset"]["name"] is None)
    return found["delivered"], found["pending"]


def _holds_products(state: Path) -> bool:
    """Whether the journal in *state* has committed items to the default dataset."""
    if not (state / "crawl.json").exists():
        return False
    datasets = record(state)["cursor"].get("datasets", [])
    return any(d["dataset"]["name"] is None for d in datasets)


def record(state: Path, key: str = "crawl") -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads((state / f"{key}.json").read_bytes())
    return envelope


async def test_a_crawl_delivers_what_each_handler_did_once(site: Shop, tmp_path: Path) -> None:
    """Every product reaches the default dataset once, every listing the named one once, every
    price the key-value store; `run` returns the crawler's own statistics; and the journal
    left behind holds no request and nothing pending."""
    crawler, seen = make_crawler(tmp_path / "storage"), Seen()
    shop_handler(crawler, seen)

    stats = await exactly_once(crawler, store=FileStore(tmp_path / "state")).run(
        [f"{site.url}/list/0"]
    )

    products = Counter(item["product"] for item in await items(crawler))
    listings = Counter(item["listing"] for item in await items(crawler, "listings"))
    prices = await crawler.get_key_value_store()
    journal = record(tmp_path / "state")["cursor"]

    assert dict.fromkeys(range(30), 1) == dict(products)
    assert dict.fromkeys(range(3), 1) == dict(listings)
    assert {"price": 7 * 3} == await prices.get_value("price-7")
    assert 33 == stats.requests_finished
    assert ([], 33, 0) == (journal["requests"], journal["finished"], journal["failed"])
    assert [[], []] == [dataset["pending"] for dataset in journal["datasets"]]
    assert ([], {}) == (journal["values"], journal["charges"])


async def test_a_request_the_journal_holds_is_completed_from_it(site: Shop, tmp_path: Path) -> None:
    """A request an earlier run committed, but the queue still hands out (it was killed
    before marking it handled), is marked handled from the journal: its handler never runs
    again, and its committed items reach the dataset once."""
    state = tmp_path / "state"
    start = f"{site.url}/list/0"
    journal = {
        "requests": [start],
        "finished": 1,
        "failed": 0,
        "datasets": [
            {
                "dataset": {"id": None, "name": None, "alias": None},
                "delivered": 0,
                "pending": [{"product": "committed"}],
            }
        ],
        "values": [],
        "charges": {},
    }
    async with job("crawl", cursor=journal, store=FileStore(state), triggers=[]):
        pass
    crawler, seen = make_crawler(tmp_path / "storage"), Seen()
    shop_handler(crawler, seen)
    await (await crawler.get_request_manager()).add_request(start)  # as the earlier run had

    stats = await exactly_once(crawler, store=FileStore(state), triggers=[]).run([start])

    assert {} == dict(seen.urls)
    assert [{"product": "committed"}] == await items(crawler)
    assert 1 == stats.requests_finished
    assert [] == record(state)["cursor"]["requests"]


async def test_the_statistics_start_from_the_journal(site: Shop, tmp_path: Path) -> None:
    """With five requests finished by earlier runs, ``max_requests_per_crawl=8`` lets this
    run handle three more, not eight."""
    state = tmp_path / "state"
    journal = {"requests": [], "finished": 5, "failed": 0, "datasets": [], "values": [],
               "charges": {}}  # fmt: skip
    async with job("crawl", cursor=journal, store=FileStore(state), triggers=[]):
        pass
    crawler, seen = (
        make_crawler(tmp_path / "storage", concurrency=1, max_requests_per_crawl=8),
        Seen(),
    )
    shop_handler(crawler, seen)

    stats = await exactly_once(crawler, store=FileStore(state), triggers=[]).run(
        [f"{site.url}/list/0"]
    )

    assert 3 == sum(seen.urls.values())
    assert 8 == stats.requests_finished
    assert 8 == record(state)["cursor"]["finished"]


async def test_a_failed_request_is_committed_as_failed(site: Shop, tmp_path: Path) -> None:
    """A request that fails for good is counted in the journal's failed count, marked
    handled (the next run does not try it again), and nothing it pushed before failing is
    delivered."""
    crawler = make_crawler(tmp_path / "storage", max_request_retries=0)

    @crawler.router.default_handler
    async def handle(context: BeautifulSoupCrawlingContext) -> None:
        if "/list/" in context.request.url:
            await context.enqueue_links(selector="a.product")
        await context.push_data({"url": context.request.url})
        if context.request.url.endswith("/product/4"):
            raise RuntimeError("this product page is broken")

    stats = await exactly_once(crawler, store=FileStore(tmp_path / "state")).run(
        [f"{site.url}/list/0"]
    )

    urls = [item["url"] for item in await items(crawler)]
    journal = record(tmp_path / "state")["cursor"]
    queue = await crawler.get_request_manager()

    assert f"{site.url}/product/4" not in urls
    assert 10 == len(urls)
    assert (10, 1) == (stats.requests_finished, stats.requests_failed)
    assert (10, 1) == (journal["finished"], journal["failed"])
    assert await queue.is_finished()


class Stopper:
    """A trigger that hands the test the job's controls."""

    def __init__(self) -> None:
        self.controls: Controls | None = None

    def attach(self, controls: Controls) -> Any:
        self.controls = controls
        return lambda: None


async def test_an_abort_takes_no_new_request_and_commits_what_finished(tmp_path: Path) -> None:
    """Aborted with eight requests in flight, the crawler takes no new one, those in flight
    finish and are committed, the run ends aborted; the next run handles the rest, and no
    product is delivered twice."""
    with Shop(pages=6, per_page=10, delay=0.05) as slow:
        slow.start()
        stopper, seen = Stopper(), Seen()
        crawler = make_crawler(tmp_path / "storage")
        shop_handler(crawler, seen)
        first = exactly_once(crawler, store=FileStore(tmp_path / "state"), triggers=[stopper])
        running = asyncio.create_task(first.run([f"{slow.url}/list/0"]))
        await wait_until(lambda: sum(seen.urls.values()) >= 20, timeout=60)
        assert stopper.controls is not None
        await stopper.controls.abort("a test aborts it")
        await running
        after_abort = sum(seen.urls.values())
        delivered = len(await items(crawler))

        assert first.outcome is not None
        assert "aborted" == first.outcome.status
        assert after_abort < 6 * 11
        assert (delivered, []) == _default_dataset(record(tmp_path / "state")["cursor"])

        again = make_crawler(tmp_path / "storage")
        shop_handler(again, seen)
        await exactly_once(again, store=FileStore(tmp_path / "state")).run([f"{slow.url}/list/0"])

    products = Counter(item["product"] for item in await items(again))

    assert dict.fromkeys(range(60), 1) == dict(products)


async def test_an_older_run_is_fenced_out(tmp_path: Path) -> None:
    """Once another run has claimed the key, the older run's next commit is refused: it
    raises StaleWriterError, and the dataset holds exactly what the journal the newer run
    took over accounts for."""
    with Shop(pages=6, per_page=10, delay=0.02) as slow:
        slow.start()
        seen = Seen()
        crawler = make_crawler(tmp_path / "storage")
        shop_handler(crawler, seen)
        older = asyncio.create_task(
            exactly_once(crawler, store=FileStore(tmp_path / "state"), triggers=[]).run(
                [f"{slow.url}/list/0"]
            )
        )
        # A journal that has committed products: the default dataset is in it.
        await wait_until(lambda: _holds_products(tmp_path / "state"), timeout=60)
        async with job(
            "crawl", cursor={}, store=FileStore(tmp_path / "state"), triggers=[]
        ) as newer:
            taken_over = newer.cursor
            with pytest.raises(StaleWriterError):
                await older

    delivered, pending = _default_dataset(taken_over)

    assert delivered + len(pending) == len(await items(crawler))


async def test_a_non_crawler_is_refused() -> None:
    """exactly_once() says what it takes when given something that is not a crawler."""
    with pytest.raises(InvalidOptionError, match="takes a Crawlee crawler"):
        exactly_once("https://shop.example/")  # type: ignore[arg-type]


async def test_a_value_the_journal_cannot_hold_is_refused(site: Shop, tmp_path: Path) -> None:
    """A key-value store value that is neither JSON nor bytes stops the crawl with an error
    naming the key, and nothing is delivered for that request."""
    crawler = make_crawler(tmp_path / "storage", concurrency=1)

    @crawler.router.default_handler
    async def handle(context: BeautifulSoupCrawlingContext) -> None:
        store = await context.get_key_value_store()
        await store.set_value("when", object())

    with pytest.raises(Exception, match="'when'"):
        await exactly_once(crawler, store=FileStore(tmp_path / "state"), triggers=[]).run(
            [Request.from_url(f"{site.url}/list/0")]
        )
