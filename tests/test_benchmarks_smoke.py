"""Every benchmark runs from a clone in its smallest form, so none rots; no figure is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import missing_servers

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RUNNER = BENCHMARKS / "run.py"
SECTIONS = [
    "cost",
    "outputs",
    "exports",
    "sync",
    "instructions",
    "concurrency",
    "migration",
    "preemption",
    "stores",
    "fleet",
    "crawler",
    "scale",
    "sizes",
]
"""Every section of `benchmarks/run.py`, in its order."""
HOT_PATHS = [
    "bare",
    "resumable",
    "advance",
    "list",
    "push",
    "plain",
    "plain-resumable",
    "plain-advance",
]
"""Every subject of `benchmarks/hot_path.py`."""


def run(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script with this interpreter; its output, whatever its exit status."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def lacking(what: str, why: str | None) -> bool:
    """Whether this machine lacks *what*, which CI must have (it fails there instead)."""
    if why is not None and os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run the {what} benchmark", pytrace=False)
    return why is not None


def test_the_runner_has_the_sections_these_tests_run() -> None:
    """`run.py --list` names the sections the smoke run below expects, in the same order."""
    done = run("run.py", "--list")

    assert 0 == done.returncode, done.stderr
    assert SECTIONS == [line.split(":", 1)[0] for line in done.stdout.splitlines()]


@pytest.mark.timeout(300)
def test_every_section_runs_in_its_smoke_form(tmp_path: Path) -> None:
    """`run.py --smoke` runs every section and writes one report, its figures and the plot."""
    expected = list(SECTIONS)
    if lacking("instructions", None if shutil.which("valgrind") else "valgrind is not installed"):
        expected.remove("instructions")
    if lacking("store and fleet", missing_servers()):
        expected = [s for s in expected if s not in {"stores", "fleet"}]
    # The plot needs the bench extra's matplotlib; the README's test environment has not.
    plotting = importlib.util.find_spec("matplotlib") is not None
    plot = tmp_path / "performance.png"
    drawn = ("--plot", str(plot)) if plotting else ("--no-plot",)

    done = run("run.py", "--smoke", "--out", str(tmp_path), *drawn, timeout=270)

    assert 0 == done.returncode, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert expected == list(results["figures"])
    assert expected == list(results["seconds"])
    assert "smoke" == results["preset"]
    headings = [line for line in done.stdout.splitlines() if line.startswith("### ")]
    assert len(expected) + 1 + (expected != SECTIONS) == len(headings)
    assert "### Targets" == headings[-1]
    assert (tmp_path / "results.md").read_text().strip() == done.stdout.strip()
    assert plotting == plot.is_file()


@pytest.mark.parametrize("subject", HOT_PATHS)
def test_each_counted_subject_produces_its_items(subject: str) -> None:
    """Every subject `instructions.py` counts runs natively and produces the items asked for."""
    done = run("hot_path.py", subject, "300")

    assert 0 == done.returncode, done.stderr
    assert "" == done.stdout


@pytest.mark.timeout(300)
def test_instruction_counts_compare_another_checkout() -> None:
    """`instructions.py --against DIR` counts a subject with both packages, side by side."""
    if lacking("instructions", None if shutil.which("valgrind") else "valgrind is not installed"):
        pytest.skip("valgrind is not installed")

    done = run(
        "instructions.py",
        *("--items", "2000", "--only", "plain-resumable", "--against", str(BENCHMARKS.parent)),
        timeout=270,
    )

    assert 0 == done.returncode, done.stderr
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines()[2:]]
    assert ["bare `for` (plain floor)", "`@resumable`, plain generator"] == rows
    assert done.stdout.startswith(
        f"| subject | instructions per item | x its floor | {BENCHMARKS.parent} | x its floor "
        "| this / that |"
    )
    assert "n/a" not in done.stdout


def test_a_runner_mistake_is_named_without_a_traceback() -> None:
    """An unknown section, or ``--docs`` with part of the set, says what to do instead."""
    unknown = run("run.py", "--only", "cost,nope")
    partial = run("run.py", "--docs", "--only", "cost")

    assert 2 == unknown.returncode
    assert "unknown section(s) nope; see --list" in unknown.stderr
    assert 2 == partial.returncode
    assert "--docs shows one run of every section: leave out --only" in partial.stderr
    assert "Traceback" not in unknown.stderr + partial.stderr
