"""examples/crawlee_shop: a real Crawlee crawler's dataset items, exactly once across a
migration and a SIGKILL without warning."""

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

from examples.crawlee_shop.shop import PER_PAGE, Shop
from resumable.testing import PlatformEvents

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = 12
# Runs the example as `python -m examples.crawlee_shop URL` does, connected to the stand-in.
LAUNCHER = (
    "import runpy; from resumable.testing import use_stand_in; use_stand_in(); "
    "runpy.run_module('examples.crawlee_shop', run_name='__main__', alter_sys=True)"
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
