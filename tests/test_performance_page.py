"""The performance page stays true: the docs' build fails once a benchmark changed after it."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns("out", "__pycache__")


# benchmarks/ is no package: its functions are taken from the file, as docs/conf.py does.
freshness = SimpleNamespace(**runpy.run_path(str(ROOT / "benchmarks" / "freshness.py")))


@pytest.fixture
def benchmarks(tmp_path: Path) -> Path:
    """A benchmarks folder of two scripts."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "cost.py").write_text("print('cost')\n")
    (folder / "run.py").write_text("print('run')\n")
    (folder / "results.json").write_text("{}\n")
    return folder


def page_measured_with(benchmarks: Path) -> Path:
    """A page whose generated block records *benchmarks* as they are now."""
    page = benchmarks.parent / "performance.md"
    page.write_text(f"# Performance\n\n{freshness.stamp(benchmarks)}\n| a | table |\n")
    return page


def test_a_page_measured_with_the_benchmarks_as_they_are_is_current(benchmarks: Path) -> None:
    """The digests cover the scripts only, and a checkout's CRLF line endings change nothing."""
    page = page_measured_with(benchmarks)
    (benchmarks / "results.json").write_text('{"other": "figures"}\n')
    (benchmarks / "run.py").write_bytes(b"print('run')\r\n")

    assert None is freshness.problem(page, benchmarks)


def test_a_changed_new_or_removed_benchmark_is_named(benchmarks: Path) -> None:
    """Each file that differs from what measured the page is named, with the command to run."""
    page = page_measured_with(benchmarks)
    (benchmarks / "cost.py").write_text("print('cheaper')\n")
    (benchmarks / "run.py").unlink()
    (benchmarks / "crawlee.py").write_text("print('pages')\n")

    problem = freshness.problem(page, benchmarks)

    assert (
        "the figures in performance.md were measured with other benchmarks than benchmarks/ "
        "holds now (cost.py changed, crawlee.py is new, run.py is gone): run "
        "`python benchmarks/run.py --docs` (about 10 minutes on 2 cores, with "
        "`pip install -e '.[bench]'`) and commit the page with docs/images/performance.png"
    ) == problem


def test_a_page_without_a_record_is_out_of_date(benchmarks: Path) -> None:
    """A page that says nothing of its benchmarks is taken as out of date, never as current."""
    page = benchmarks.parent / "performance.md"
    page.write_text("# Performance\n\n| a | hand-made table |\n")

    problem = freshness.problem(page, benchmarks)

    assert problem is not None
    assert problem.startswith("performance.md does not say which benchmarks measured its figures")


def build_docs(clone: Path) -> subprocess.CompletedProcess[str]:
    """``sphinx-build -W --keep-going`` of *clone*'s docs, as CI builds them."""
    docs, html = str(clone / "docs"), str(clone / "html")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", docs, html],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_docs_build_fails_once_a_benchmark_changed(tmp_path: Path) -> None:
    """``sphinx-build -W`` of a clone whose page records its benchmarks succeeds; once one
    benchmark changes it fails, naming the file and the command that brings the page up to
    date."""
    pytest.importorskip("sphinx", reason="the docs extra builds the docs")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks", ignore=IGNORED)
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path)
    page = tmp_path / "docs" / "performance.md"
    text = re.sub(r"<!-- measured with benchmarks/: [^>]* -->\n", "", page.read_text())
    page.write_text(text + freshness.stamp(tmp_path / "benchmarks") + "\n")
    current = build_docs(tmp_path)
    with (tmp_path / "benchmarks" / "outputs.py").open("a") as script:
        script.write("# a change the page has not been measured with\n")

    stale = build_docs(tmp_path)

    assert 0 == current.returncode, current.stderr
    assert 0 != stale.returncode
    assert "outputs.py changed" in stale.stderr
    assert "run `python benchmarks/run.py --docs`" in stale.stderr
