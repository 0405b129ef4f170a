"""examples/crawlee_shop: a real Crawlee crawler's dataset items, exactly once across a
migration, a SIGKILL without warning, and Ctrl-C in the middle of a page's crawl."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from held_shop import HeldShop

from examples.crawlee_shop.src.shop import PER_PAGE, Shop
from resumable.testing import PlatformEvents

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = 12
# Runs the example as `python -m src URL` in its folder does, connected to the stand-in.
LAUNCHER = (
    "import runpy; from resumable.testing import use_stand_in; use_stand_in(); "
    "runpy.run_module('examples.crawlee_shop.src', run_name='__main__', alter_sys=True)"
)


async def eventually(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def platform() -> AsyncIterator[PlatformEvents]:
    async with PlatformEvents() as events:
        yield events


async def test_the_crawl_delivers_each_product_once_across_migration_and_kill(
    platform: PlatformEvents, tmp_path: Path
) -> None:
    """Migrated, then killed without warning, then run to its end: the default dataset holds
    every product of the shop exactly once."""
    storage = tmp_path / "storage"
    env = os.environ | platform.env(storage)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    runs: list[asyncio.subprocess.Process] = []

    def products() -> list[int]:
        folder = storage / "datasets" / "default"
        files = sorted(folder.glob("0*.json"))
        return [int(json.loads(f.read_text())["url"].rsplit("/", 1)[1]) for f in files]

    def log() -> str:
        return (tmp_path / f"run{len(runs)}.err").read_text(errors="replace")

    with Shop(pages=PAGES) as shop:
        shop.start()

        async def start() -> asyncio.subprocess.Process:
            with (tmp_path / f"run{len(runs) + 1}.err").open("wb") as err:
                child = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-c", LAUNCHER, shop.url),
                    cwd=ROOT,
                    env=env,
                    stdout=err,
                    stderr=err,
                    stdin=asyncio.subprocess.DEVNULL,
                )
            runs.append(child)
            await platform.connected(timeout=30, count=len(runs))
            return child

        child = await start()
        await eventually(lambda: len(products()) >= 2 * PER_PAGE, "two pages delivered")
        await platform.send("migrating", {"timeRemainingSecs": 20})
        await eventually(lambda: "waiting for the platform to stop" in log(), "parked")
        child.send_signal(signal.SIGKILL)
        await child.wait()

        child = await start()
        target = len(products()) + 2 * PER_PAGE
        await eventually(lambda: len(products()) >= target, "two more pages delivered")
        child.send_signal(signal.SIGKILL)
        await child.wait()

        child = await start()
        async with asyncio.timeout(120):
            code = await child.wait()

    counts = Counter(products())

    assert 0 == code, log()[-3000:]
    assert {} == {product: n for product, n in counts.items() if n != 1}
    assert set(range(PAGES * PER_PAGE)) == set(counts)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sigints", [1, 2])
async def test_ctrl_c_mid_page_ends_the_run_aborted_and_loses_no_product(
    tmp_path: Path, sigints: int
) -> None:
    """Ctrl-C while a page is being crawled (Crawlee's crawler.run has its own SIGINT handler
    then) stops the job, not just the crawl: the run ends aborted at a page whose products
    all reached the dataset, and the next run delivers every other product, each once."""
    pages = 4
    env = os.environ | {
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "storage"),
        "CRAWLEE_PURGE_ON_START": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    folder = tmp_path / "storage" / "datasets" / "default"

    def products() -> list[int]:
        files = sorted(folder.glob("0*.json"))
        return [int(json.loads(f.read_text())["url"].rsplit("/", 1)[1]) for f in files]

    async def run(shop: str, log: Path) -> asyncio.subprocess.Process:
        with log.open("wb") as err:
            return await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "examples.crawlee_shop.src", shop),
                cwd=ROOT,
                env=env,
                stdout=err,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
            )

    first_log, second_log = tmp_path / "run1.err", tmp_path / "run2.err"
    with HeldShop(pages=pages, held=f"/product/{PER_PAGE + 3}", timeout=60) as shop:
        shop.start()
        child = await run(shop.url, first_log)
        try:
            await eventually(shop.asked.is_set, "the held product of page 1 asked for")
            for _ in range(sigints):
                child.send_signal(signal.SIGINT)
            await eventually(
                lambda: "received SIGINT" in first_log.read_text(), "the job told", timeout=30
            )
        finally:
            shop.release.set()
            async with asyncio.timeout(60):
                first = await child.wait()
        story = first_log.read_text()
        aborted_at = story.partition("Run aborted at page ")[2].partition(",")[0]

        assert 0 == first, story[-3000:]
        assert aborted_at.isdigit(), story[-3000:]
        assert 1 <= int(aborted_at) < pages
        assert list(range(int(aborted_at) * PER_PAGE)) == sorted(products())

        child = await run(shop.url, second_log)
        async with asyncio.timeout(120):
            second = await child.wait()
    record = json.loads(
        (tmp_path / "storage" / "key_value_stores" / "default" / "shop").read_text()
    )
    counts = Counter(products())

    assert 0 == second, second_log.read_text()[-3000:]
    assert ("completed", pages) == (record["status"], record["cursor"])
    assert {} == {product: n for product, n in counts.items() if n != 1}
    assert set(range(pages * PER_PAGE)) == set(counts)
