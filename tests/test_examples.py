"""Every example in examples/ runs as its docstring says, with one command, within a deadline."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import poll
from servers import RedisServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEADLINE = 60

# Examples that need more than `python examples/NAME.py`, and the test that runs each.
SPECIAL = {
    "demo.py": "test_the_demo_* below",
    "testing_example.py": "tests/test_docs_tests.py (it runs under pytest)",
    "celery_tasks.py": "tests/test_celery.py (it needs a Redis broker and a Celery worker)",
}

# What each example prints last when it did its job.
LAST_LINE = {
    "backfill.py": "95 of 95 items in the database, 95 writes.",
    "changing_cursor.py": "no row was exported twice: version 2 began at page 4",
    "concurrent_crawl.py": "of them twice, none lost",
    "csv_to_jsonl.py": "500 of 500 rows in the output, each exactly once",
    "custom_sink.py": "the table holds orders [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]: each once",
    "custom_store.py": "second run: resumed from 6, completed",
    "sigterm_worker.py": "next pod: completed at task 30, resumed from 13",
}

PLAIN = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in SPECIAL)


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` the way the examples' docstrings say, within the deadline."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def test_every_example_is_covered() -> None:
    """A new example gets an expected last line here, or its own test: none is left unrun."""
    assert sorted(LAST_LINE) == PLAIN


@pytest.mark.parametrize("name", PLAIN)
def test_example_runs(name: str) -> None:
    """``python examples/NAME.py`` from the repository's root exits 0 and tells its story."""
    result = run(f"examples/{name}")

    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr
    assert LAST_LINE[name] in result.stdout.splitlines()[-1]


def test_the_demo_stops_twice_and_finishes_without_losing_an_item() -> None:
    """The README's demo, run as the README says, shows both stops and a full resume."""
    result = run("examples/demo.py")

    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr
    out = result.stdout
    assert "Resuming at item" in out.split("Run 2")[1]
    assert "Resuming at item" in out.split("Run 3")[1]
    assert "==> 40 of 40 items done, none skipped." in out


def test_the_demo_step_mode_resumes_after_ctrl_c(tmp_path: Path) -> None:
    """``demo.py --step`` interrupted by SIGINT (Ctrl-C) continues where it stopped."""
    child = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "demo.py"), "--step"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        seen = [child.stdout.readline() for _ in range(6)]  # the banner, then items 0 to 4
        child.send_signal(signal.SIGINT)
        rest, _ = child.communicate(timeout=DEADLINE)
    finally:
        child.kill()
        child.wait()
    stopped = rest.splitlines()[-1]
    saved = int(stopped.split("saved cursor ")[1].split(".")[0])

    again = run(str(EXAMPLES / "demo.py"), "--step", cwd=tmp_path)
    reset = run(str(EXAMPLES / "demo.py"), "--reset", cwd=tmp_path)

    assert "item 4 done\n" == seen[-1]
    assert 0 == child.returncode
    assert stopped.startswith("Stopped; saved cursor ")
    assert saved >= 5
    assert f"Resuming at item {saved} (the last run was stopped)." in again.stdout
    assert "Done: all 40 items." == again.stdout.splitlines()[-1]
    assert 0 == reset.returncode
    assert not list((tmp_path / ".resumable").glob("*.json"))


def test_the_example_actor_crawls_a_shop_of_its_own_offline(tmp_path: Path) -> None:
    """``python -m src`` in ``examples/apify_actor`` without a start URL (what ``apify run``
    starts) serves its own 100-product shop on 127.0.0.1 and crawls it: each product in the
    dataset once, and charged once at the price of ``.actor/pricing.json`` with pay-per-event
    charging on, as its README says to try it. Run again on the same storage, it serves the
    shop on the same port, so the queue's URLs still lead there and nothing is crawled
    twice; with that port taken, it says so and exits 1."""
    actor = EXAMPLES / "apify_actor"
    storage = tmp_path / "storage"
    default = storage / "key_value_stores" / "default"
    default.mkdir(parents=True)
    (default / "INPUT.json").write_text('{"shopDelayMillis": 0}')
    env = {
        **os.environ,
        "CRAWLEE_STORAGE_DIR": str(storage),
        "CRAWLEE_PURGE_ON_START": "false",
        "ACTOR_TEST_PAY_PER_EVENT": "true",
        "APIFY_ACTOR_PRICING_INFO": (actor / ".actor" / "pricing.json").read_text(),
        "APIFY_CHARGED_ACTOR_EVENT_COUNTS": '{"product": 0}',
    }

    def files(dataset: str) -> list[dict[str, Any]]:
        folder = storage / "datasets" / dataset
        return [json.loads(f.read_text()) for f in sorted(folder.glob("0*.json"))]

    first = run("-m", "src", cwd=actor, env=env)
    again = run("-m", "src", cwd=actor, env=env)
    port = int((default / "own-shop-port").read_text())
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        refused = run("-m", "src", cwd=actor, env=env)
    items = files("default")
    charges = [entry for entry in files("charging-log") if entry["event_name"] == "product"]

    assert 0 == first.returncode, first.stderr[-3000:]
    assert "Crawl completed (from the start)" in first.stderr
    assert list(range(100)) == sorted(int(item["url"].rsplit("/", 1)[1]) for item in items)
    assert {"url", "name", "price"} == set(items[0])
    assert 100 == sum(entry["charged_count"] for entry in charges)
    assert {0.001} == {entry["event_price_usd"] for entry in charges}
    assert 0 == again.returncode, again.stderr[-3000:]
    assert "Crawl completed (resumed from the journal)" in again.stderr
    assert 1 == refused.returncode
    assert f"The Actor's own shop cannot be served on port {port} again" in refused.stderr


KUBERNETES = EXAMPLES / "kubernetes"


def test_the_indexed_job_worker_resumes_its_shard_after_sigterm(redis_server: RedisServer) -> None:
    """``indexed_worker.py`` with JOB_COMPLETION_INDEX set, on a shared Redis: SIGTERM
    mid-shard saves and exits non-zero (the Job runs the index again); the next pod of the
    index continues from the saved cursor and exits 0."""
    url = f"redis://127.0.0.1:{redis_server.port}/3"  # a database of its own
    state = redis.Redis.from_url(url)
    state.flushdb()
    env = {**os.environ, "JOB_COMPLETION_INDEX": "5", "RESUMABLE_STORE_URL": url}
    worker = str(KUBERNETES / "indexed_worker.py")

    def record() -> dict[str, Any] | None:
        data = state.get("resumable:backfill-5")
        return None if data is None else dict(json.loads(data))

    pod = subprocess.Popen([sys.executable, worker], env=env, stdout=subprocess.PIPE, text=True)
    try:
        poll(lambda: (r := record()) is not None and r["cursor"] >= 20, timeout=DEADLINE)
        pod.send_signal(signal.SIGTERM)  # what the kubelet does to an evicted pod
        evicted, _ = pod.communicate(timeout=DEADLINE)
    finally:
        pod.kill()
        pod.wait()
    saved = record()
    again = subprocess.run(
        [sys.executable, worker],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    state.close()

    assert saved is not None
    stopped_at = saved["cursor"]
    assert 128 + signal.SIGTERM == pod.returncode
    assert "aborted" == saved["status"]
    assert f"shard 5: aborted at item {stopped_at}, resumed from None" == evicted.splitlines()[-1]
    assert 0 == again.returncode, again.stderr
    assert f"shard 5: starting at item {stopped_at}" == again.stdout.splitlines()[0]
    assert (
        f"shard 5: completed at item 100, resumed from {stopped_at}"
        == again.stdout.splitlines()[-1]
    )


def test_the_indexed_job_manifest_gives_each_pod_its_shard() -> None:
    """``indexed-job.yaml`` parses, is an Indexed Job that runs ``indexed_worker.py`` with the
    shared store from its Secret, and tells the worker its termination grace."""
    text = (KUBERNETES / "indexed-job.yaml").read_text()
    if importlib.util.find_spec("yaml") is None:  # PyYAML is not a dependency of the tests
        assert "completionMode: Indexed" in text
        assert '"indexed_worker.py"' in text
        return
    import yaml

    documents = {d["kind"]: d for d in yaml.safe_load_all(text)}
    spec = documents["Job"]["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}

    assert "Indexed" == spec["completionMode"]
    assert "indexed_worker.py" in container["command"][-1]
    assert (KUBERNETES / container["command"][-1]).is_file()
    secret = env["RESUMABLE_STORE_URL"]["valueFrom"]["secretKeyRef"]
    assert documents["Secret"]["metadata"]["name"] == secret["name"]
    assert secret["key"] in documents["Secret"]["stringData"]
    assert str(pod["terminationGracePeriodSeconds"]) == env["RESUMABLE_TERMINATION_GRACE"]["value"]
