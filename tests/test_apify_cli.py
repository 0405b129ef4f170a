"""The example Actors under the real Apify CLI, run as Actor authors run them locally.

``apify run`` in the Actor's folder, Ctrl-C half-way (SIGINT to the process group, as a
terminal sends it), then ``apify run --no-purge``: the run resumes and the dataset holds each
item once. The CLI (1.x, ``npm install -g apify-cli@1``) runs offline: no login, no
telemetry, no update check, the Actor on this virtual environment's Python.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from graph_shop import GatedShop, product_of, stop_noticed
from held_shop import HeldShop
from helpers import poll
from servers import skip_or_fail

from examples.crawlee_shop.src.shop import PER_PAGE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEADLINE = 120
"""Seconds an Actor run under the CLI may take, start-up included, on a busy machine."""


@pytest.fixture(scope="session")
def apify_cli() -> str:
    """The Apify CLI 1.x on the PATH (skipped without it, except under CI), and a virtual
    environment for it to run the Actors on."""
    found = shutil.which("apify")
    if found is None:
        skip_or_fail("the Apify CLI is not installed: npm install -g apify-cli@1")
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    if not version.startswith("apify-cli/1."):
        skip_or_fail(f"these tests drive the Apify CLI 1.x; {found} is {version.strip()!r}")
    python = Path(sys.prefix) / "bin" / "python3"
    if not python.exists() or not python.samefile(sys.executable):
        skip_or_fail("the CLI runs an Actor on $VIRTUAL_ENV/bin/python3: run the tests in a venv")
    if not Path("/proc/self/stat").exists():
        pytest.skip("telling when an Actor's processes have all ended reads /proc")
    return found


def live_processes(group: int) -> list[int]:
    """The processes of a process group that have not ended (zombies left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue
        if int(pgrp) == group and state != "Z":
            found.append(int(stat.parent.name))
    return found


class ActorFolder:
    """A copy of an example Actor's folder, run with ``apify run`` there."""

    def __init__(self, example: str, directory: Path, cli: str) -> None:
        self.path = directory / example
        shutil.copytree(
            EXAMPLES / example,
            self.path,
            ignore=shutil.ignore_patterns("storage", "__pycache__", "*.whl"),
        )
        self.cli = cli
        self.storage = self.path / "storage"
        home = directory / "home"
        home.mkdir()
        ours = ("APIFY_", "ACTOR_", "CRAWLEE_")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        self.env = inherited | {
            "HOME": str(home),  # no login of the machine's user, nothing written to theirs
            "APIFY_CLI_DISABLE_TELEMETRY": "1",
            "APIFY_CLI_SKIP_UPDATE_CHECK": "1",
            "APIFY_DISABLE_KEYRING": "1",
            "VIRTUAL_ENV": sys.prefix,
            # Saves (and with them the dataset's items) every 100 ms, not every minute.
            "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS": "100",
        }
        self.runs: list[subprocess.Popen[bytes]] = []

    def write_input(self, value: dict[str, Any]) -> None:
        """Store the Actor's input, as ``INPUT.json`` in its default key-value store."""
        default = self.storage / "key_value_stores" / "default"
        default.mkdir(parents=True, exist_ok=True)
        (default / "INPUT.json").write_text(json.dumps(value))

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``apify run ARGS`` in a session of its own, as a terminal's foreground job."""
        with self.log_path(len(self.runs) + 1).open("wb") as log:
            run = subprocess.Popen(
                [self.cli, "run", *args],
                cwd=self.path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.runs.append(run)
        return run

    def ctrl_c(self, run: subprocess.Popen[bytes]) -> None:
        """Send SIGINT to the run's whole process group: the CLI, its shell and the Actor."""
        os.killpg(run.pid, signal.SIGINT)

    def wait(self, run: subprocess.Popen[bytes]) -> int:
        """Wait until the CLI and every process it started have ended; return the CLI's code."""
        code = run.wait(timeout=DEADLINE)
        poll(lambda: not live_processes(run.pid), timeout=DEADLINE)
        return code

    def log_path(self, number: int) -> Path:
        return self.path.parent / f"run{number}.log"

    def log(self, run: subprocess.Popen[bytes]) -> str:
        """What the run printed: the CLI's lines and the Actor's."""
        return self.log_path(self.runs.index(run) + 1).read_text(errors="replace")

    def dataset(self, name: str = "default") -> list[dict[str, Any]]:
        """The items of the default (or named) dataset, in the order pushed."""
        folder = self.storage / "datasets" / name
        return [json.loads(path.read_text()) for path in sorted(folder.glob("0*.json"))]

    def record(self, key: str) -> dict[str, Any]:
        """The job record *key* in the default key-value store."""
        data = json.loads((self.storage / "key_value_stores" / "default" / key).read_text())
        assert isinstance(data, dict)
        return data

    def kill_all(self) -> None:
        """End whatever is left of every run (after a failed test)."""
        for run in self.runs:
            for pid in live_processes(run.pid):
                os.kill(pid, signal.SIGKILL)
            run.wait()


@pytest.fixture
def folders(apify_cli: str, tmp_path: Path) -> Any:
    """A factory of `ActorFolder` copies; every run left going is killed at the end."""
    made: list[ActorFolder] = []

    def make(example: str) -> ActorFolder:
        made.append(ActorFolder(example, tmp_path, apify_cli))
        return made[-1]

    yield make
    for folder in made:
        folder.kill_all()


def test_the_example_crawler_stops_on_ctrl_c_and_resumes_with_no_purge(folders: Any) -> None:
    """`apify run` over a shop, Ctrl-C mid-crawl, `apify run --no-purge`: the second run goes
    on from the journal, and the dataset holds each product of the shop once, the charging
    log one charge for each. The CLI exits 1 after the Ctrl-C, although the Actor ended
    cleanly. A plain `apify run` after that purges the journal, and the Actor warns, naming
    the switches that keep it."""
    actor = folders("apify_actor")
    actor.env["ACTOR_TEST_PAY_PER_EVENT"] = "true"
    with GatedShop(pages=8) as shop:
        shop.start()
        actor.write_input({"startUrl": shop.start_url})
        first = actor.start()
        shop.allow(30)
        poll(lambda: len(actor.dataset()) >= 15, timeout=DEADLINE)

        actor.ctrl_c(first)
        poll(lambda: stop_noticed(actor.log(first)), timeout=DEADLINE)
        shop.allow()  # the requests in flight finish, and the crawler takes no new one
        stopped = actor.wait(first)
        saved = actor.record("shop")
        second = actor.start("--no-purge")
        resumed = actor.wait(second)
        counts = Counter(product_of(item["url"]) for item in actor.dataset())
        charged = actor.dataset("charging-log")
        third = actor.start()
        purged = actor.wait(third)

    assert 1 == stopped
    assert "exited due to signal SIGINT" in actor.log(first)
    assert "Crawl aborted (from the start)" in actor.log(first)
    assert "aborted" == saved["status"]
    assert 0 < saved["cursor"]["finished"] < shop.products
    assert 0 == resumed, actor.log(second)
    assert "Crawl completed (resumed from the journal)" in actor.log(second)
    assert "ResumableWarning" not in actor.log(second)
    assert set(range(shop.products)) == set(counts)
    assert {} == {product: n for product, n in counts.items() if n != 1}
    assert shop.products == sum(e["charged_count"] for e in charged if e["event_name"] == "product")
    assert 0 == purged, actor.log(third)
    assert "`apify run` started this Actor with no job state" in actor.log(third)
    assert "apify run --no-purge" in actor.log(third)
    assert "Crawl completed (from the start)" in actor.log(third)


PAGES = 8
HELD = 3


def test_the_crawlee_example_stops_on_ctrl_c_and_resumes_with_no_purge(folders: Any) -> None:
    """`apify run` over a shop, Ctrl-C while a listing page is in flight, `apify run
    --no-purge`: the second run crawls from that page on, and the dataset holds each product
    of the shop once."""
    actor = folders("crawlee_shop")
    with HeldShop(pages=PAGES, held=f"/list/{HELD}", timeout=DEADLINE) as shop:
        shop.start()
        actor.write_input({"shopUrl": shop.url})
        first = actor.start()
        poll(lambda: shop.asked.is_set() and len(actor.dataset()) >= HELD * PER_PAGE, DEADLINE)

        actor.ctrl_c(first)
        shop.release.set()
        stopped = actor.wait(first)
        saved = actor.record("shop")
        second = actor.start("--no-purge")
        resumed = actor.wait(second)
    products = Counter(int(item["url"].rsplit("/", 1)[1]) for item in actor.dataset())

    assert 1 == stopped
    assert "Run aborted at page" in actor.log(first)
    assert "aborted" == saved["status"]
    # The page in flight was cut, or finished within the grace the Ctrl-C gave it.
    assert saved["cursor"] in {HELD, HELD + 1}
    assert 0 == resumed, actor.log(second)
    assert f"resumed from {saved['cursor']}" in actor.log(second)
    assert set(range(PAGES * PER_PAGE)) == set(products)
    assert {} == {product: n for product, n in products.items() if n != 1}
