"""How the command line stops: one line on stderr, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

from resumable._redact import redact

PROG = "resumable"


class CliError(Exception):
    """A reason to stop, said in one line on stderr; the exit status is 1."""


def one_line(exc: BaseException) -> str:
    """An error message folded onto one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def first_clause(exc: BaseException) -> str:
    """The first sentence of an error message, for a table cell or a one-line warning."""
    return one_line(exc).split(". ", 1)[0]


def say(message: str) -> None:
    """Tell the user something on stderr, prefixed like every line the command writes there.

    A credential in it (a URL's password, from the user's --store or a driver's error) is
    shown as ``***``.
    """
    print(f"{PROG}: {redact(message)}", file=sys.stderr)


def fail(message: str) -> NoReturn:
    """Say *message* on stderr and exit with status 1."""
    say(message)
    raise SystemExit(1)
