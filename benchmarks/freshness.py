"""Whether the performance page was measured with the benchmarks as they are now.

``run.py --docs`` writes, into the page's generated block, a comment that lists a digest of
every ``benchmarks/*.py`` file; the docs' build (``docs/conf.py``) compares it with the files
and fails when they differ, naming the files and the command that brings the page up to
date. A digest of the contents, not a date: a fresh clone has no useful file times, and git
history is not everywhere the docs are built. Line endings are ignored, so a checkout that
turns them into CRLF reads the same.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
COMMAND = "python benchmarks/run.py --docs"
_MARK = re.compile(r"<!-- measured with benchmarks/: (?P<files>[^>]*) -->")


def digests(directory: Path = BENCHMARKS) -> dict[str, str]:
    """A short digest of each ``*.py`` file in *directory*, by name."""
    return {
        path.name: hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:12]
        for path in sorted(directory.glob("*.py"))
    }


def stamp(directory: Path = BENCHMARKS) -> str:
    """The comment that records, in the page, which benchmarks measured its figures."""
    files = " ".join(f"{name}={digest}" for name, digest in digests(directory).items())
    return f"<!-- measured with benchmarks/: {files} -->"


def recorded(page: str) -> dict[str, str] | None:
    """The digests the *page* records, or ``None`` when it records none."""
    found = _MARK.search(page)
    if found is None:
        return None
    return dict(entry.split("=", 1) for entry in found.group("files").split())


def problem(page: Path, directory: Path = BENCHMARKS) -> str | None:
    """What makes *page* out of date with the benchmarks in *directory*, or ``None``."""
    record = recorded(page.read_text(encoding="utf-8"))
    now = digests(directory)
    if record == now:
        return None
    advice = (
        f"run `{COMMAND}` (about 10 minutes on 2 cores, with `pip install -e '.[bench]'`) "
        "and commit the page with docs/images/performance.png"
    )
    if record is None:
        return f"{page.name} does not say which benchmarks measured its figures: {advice}"
    changed = sorted(name for name in now.keys() & record.keys() if now[name] != record[name])
    what = [
        *(f"{name} changed" for name in changed),
        *(f"{name} is new" for name in sorted(now.keys() - record.keys())),
        *(f"{name} is gone" for name in sorted(record.keys() - now.keys())),
    ]
    return (
        f"the figures in {page.name} were measured with other benchmarks than benchmarks/ holds "
        f"now ({', '.join(what)}): {advice}"
    )
