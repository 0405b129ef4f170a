"""Development sessions: `nox -s tests`, `lint`, `typecheck`, `docs`, `examples`, `bench`."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


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
