"""The benchmark runner runs from a clone: a cheap section end to end, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def test_runner_reports_a_cheap_section(tmp_path: Path) -> None:
    """`run.py --quick --only sizes,concurrency` prints its tables and writes its results."""
    done = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--quick",
            "--only",
            "sizes,concurrency",
            "--no-plot",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == done.returncode, done.stderr
    assert "### Save and load time by cursor size" in done.stdout
    assert "### Targets" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"sizes", "concurrency"} == set(results)
    assert (tmp_path / "results.md").read_text().strip() == done.stdout.strip()


def test_store_benchmark_runs_every_store(redis_server: object, postgres_server: object) -> None:
    """`stores.py` starts its servers and prints one row per store (the fixtures only make
    sure this machine has the servers, failing under CI when it does not)."""
    done = subprocess.run(
        [sys.executable, str(RUNNER.with_name("stores.py")), "--operations", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == done.returncode, done.stderr
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines() if "ms |" in line]
    assert [
        "RedisStore",
        "SQLStore (PostgreSQL)",
        "SQLStore (SQLite)",
        "ApifyStore / Crawlee Redis",
        "ApifyStore / Crawlee SQL (SQLite)",
        "ApifyStore / Crawlee SQL (PostgreSQL)",
        "FileStore",
    ] == rows


def test_the_sync_benchmark_prints_its_tables() -> None:
    """`benchmarks/sync.py` runs end to end on small sizes (its timings are not asserted)."""
    done = subprocess.run(
        [
            sys.executable,
            str(RUNNER.with_name("sync.py")),
            "--items",
            "2000",
            "--repeats",
            "1",
            "--memory-items",
            "20000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == done.returncode, done.stderr
    assert "### Per-yield cost, 2,000 items, median of 1" in done.stdout
    assert "### Resident memory over 20,000 yields" in done.stdout


def test_the_fleet_benchmark_prints_a_row_per_store_and_size(
    redis_server: object, postgres_server: object
) -> None:
    """`fleet.py` starts its servers and workers and prints items/s per store and fleet size
    (small sizes; the fixtures make sure this machine has the servers)."""
    done = subprocess.run(
        [
            sys.executable,
            str(RUNNER.with_name("fleet.py")),
            *("--shards", "4", "--items", "20", "--workers", "1,2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == done.returncode, done.stderr
    rows = [line.split("|")[1:3] for line in done.stdout.splitlines() if "x |" in line]
    assert [
        [" RedisStore ", " 1 "],
        [" RedisStore ", " 2 "],
        [" SQLStore (PostgreSQL) ", " 1 "],
        [" SQLStore (PostgreSQL) ", " 2 "],
    ] == rows
