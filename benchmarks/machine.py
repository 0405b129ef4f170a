"""Where and with what the figures were measured: the machine, its load, and every version."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("resumable", "apify", "crawlee", "dbos", "redis", "sqlalchemy", "asyncpg", "cattrs")


def describe() -> dict[str, Any]:
    """The machine, the load when asked, and the versions of everything the benchmarks run."""
    return {
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": _commit(),
        "load": load(),
        "packages": {name: _version(name) for name in PACKAGES},
        "servers": {
            "redis-server": _server_version(["redis-server", "--version"], r"v=(\S+)"),
            "PostgreSQL": _server_version(_postgres(), r"(\d+(?:\.\d+)+)"),
            "valgrind": _server_version(["valgrind", "--version"], r"valgrind-(\S+)"),
        },
    }


def load() -> str:
    """The 1, 5 and 15 minute load averages, or ``n/a``."""
    with contextlib.suppress(OSError):
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


def line(machine: dict[str, Any]) -> str:
    """One line for a plot's title."""
    return (
        f"{machine['python']}, {machine['cpus']} CPUs, {machine['system']}, "
        f"resumable {machine['packages']['resumable']} ({machine['commit']}); {machine['date']}"
    )


def table(machine: dict[str, Any], load_after: str) -> str:
    """The machine and the versions as a markdown table."""
    packages = ", ".join(f"{n} {v}" for n, v in machine["packages"].items() if v)
    servers = ", ".join(f"{n} {v}" for n, v in machine["servers"].items() if v)
    rows = [
        ("date", machine["date"]),
        ("machine", f"{machine['cpu']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB"),
        ("system", f"{machine['system']}, {machine['python']}"),
        (
            "load average (1 / 5 / 15 min)",
            f"{machine['load']} at the start, {load_after} at the end",
        ),
        ("commit", machine["commit"]),
        ("packages", packages),
        ("servers and tools", servers or "none found"),
    ]
    return "\n".join(["| | |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)])


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for entry in Path("/proc/cpuinfo").read_text().splitlines():
            if entry.startswith("model name"):
                return entry.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        return f"{kib / 2**20:.0f}"
    return "?"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _commit() -> str:
    """The checkout's commit (``+changes`` when files differ from it), or ``unknown``."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    head = _output([git, "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if not head:
        return "unknown"
    changed = _output([git, "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return f"{head}+changes" if changed else head


def _postgres() -> list[str]:
    initdb = shutil.which("initdb")
    found = [Path(initdb)] if initdb else sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return [str(found[-1]), "--version"] if found else []


def _server_version(command: list[str], pattern: str) -> str | None:
    if not command or shutil.which(command[0]) is None:
        return None
    found = re.search(pattern, _output(command))
    return found.group(1) if found else None


def _output(command: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""
    return ""
