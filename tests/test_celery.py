"""Celery: a worker SIGKILLed in the middle of a task; the task is delivered again and resumes.

A real worker (``celery -A examples.celery_tasks worker --pool solo``) on a Redis broker on
127.0.0.1, and the example's own enqueuer (``python examples/celery_tasks.py``) waiting
for the result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import poll
from servers import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 200


def start_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen[bytes]:
    """A Celery worker on the example's app, its output in *log*."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "examples.celery_tasks", "worker"),
                *("--pool", "solo", "--loglevel", "INFO", "--hostname", f"{name}@%h"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_task_of_a_killed_worker_is_delivered_again_and_resumes_at_the_saved_cursor(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGKILL the worker mid-task: the next worker gets the task again (acks_late,
    reject_on_worker_lost, a short visibility timeout) and it continues from the cursor the
    killed one saved, not from 0, up to the last item."""
    base = f"redis://127.0.0.1:{redis_server.port}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": f"{base}/1",
        "RESUMABLE_STORE_URL": f"{base}/2",
        "CELERY_VISIBILITY_TIMEOUT": "2",
    }
    state = redis.Redis.from_url(f"{base}/2")

    def record() -> dict[str, Any] | None:
        data = state.get("resumable:export-0")
        return None if data is None else dict(json.loads(data))

    log = tmp_path / "worker.log"
    enqueue = subprocess.Popen(
        [sys.executable, "examples/celery_tasks.py", "--shards", "1", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = start_worker(env, log, "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        poll(lambda: (r := record()) is not None and r["cursor"] >= 40, timeout=60)
        first.kill()
        first.wait()
        killed_at = record()
        assert killed_at is not None
        second = start_worker(env, log, "second")
        out, err = enqueue.communicate(timeout=120)
    finally:
        for process in (enqueue, first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        state.close()
    saved = killed_at["cursor"]
    print(f"killed at saved cursor {saved} of {ITEMS}; the enqueuer said: {out.strip()}")

    assert 0 == enqueue.returncode, err + log.read_text()[-3000:]
    assert "running" == killed_at["status"]
    assert 0 < saved < ITEMS
    assert (
        f"shard 0: completed at item {ITEMS}, resumed from {saved}, {ITEMS - saved} item(s) "
        "by the last delivery"
    ) == out.splitlines()[0]
    assert "1 shard(s) done" == out.splitlines()[-1]
