"""Development sessions: `nox -s tests`, `lint`, `typecheck`, `docs`, `examples`, `bench`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
# Every Python the classifiers list must be tested: a missing one fails instead of skipping.
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


def _let_pyenv_answer(versions: list[str]) -> None:
    """Make pyenv's shims run every listed version pyenv has installed, not only the selected one.

    Without this, ``python3.12`` on the PATH is a shim that refuses to run while pyenv has
    selected 3.11 alone, and nox would report 3.12 missing although it is installed.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return

    def ask(*args: str) -> list[str]:
        done = subprocess.run(  # noqa: S603 - pyenv from the PATH, fixed arguments
            [pyenv, *args], capture_output=True, text=True, check=False
        )
        return done.stdout.replace(":", " ").split()

    selected = ask("version-name")
    installed = ask("versions", "--bare")
    wanted = [
        max(found, key=lambda name: int(name.rpartition(".")[2]))
        for version in versions
        if (
            found := [
                name for name in installed if re.fullmatch(rf"{re.escape(version)}\.\d+", name)
            ]
        )
    ]
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*selected, *wanted]))


_let_pyenv_answer(PYTHONS)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (it starts `redis-server` and PostgreSQL's `initdb`/`postgres`)."""
    session.install("-e", ".[tests]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """Check style with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the examples and the benchmarks."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors."""
    session.install("-e", ".[docs,apify]")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html", "-q"
    )


@nox.session(python=PYTHONS[0])
def examples(session: nox.Session) -> None:
    """Run every example the way a reader would."""
    session.install("-e", ".[tests]")
    session.run("python", "-m", "pytest", "tests/test_examples.py", *session.posargs)


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Run the benchmarks and write the table and plot for the docs."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)
