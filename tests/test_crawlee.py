"""A Crawlee crawler stopped by SIGTERM mid-page finishes the page first: a clean log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("crawlee_child.py")


def test_sigterm_mid_page_lets_the_crawler_finish_the_page(tmp_path: Path) -> None:
    """The page in flight completes within the grace, the run ends aborted after it, and
    neither Crawlee nor resumable logs an error or a traceback."""
    result = subprocess.run(
        [sys.executable, str(CHILD), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )

    assert 0 == result.returncode, result.stderr
    assert ["PAGE-DONE 0", "PAGE-DONE 1", "MID-PAGE", "PAGE-DONE 2", "OUTCOME aborted 3"] == (
        result.stdout.splitlines()
    )
    assert "Traceback" not in result.stderr
    assert "ERROR" not in result.stderr
    assert "Statistics is not active" not in result.stderr
    assert "ended aborted; the record holds cursor 3" in result.stderr
