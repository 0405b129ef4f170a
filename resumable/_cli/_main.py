"""The command line's arguments and its entry point, `main`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from resumable._cli import _commands
from resumable._cli._errors import PROG, CliError, fail, one_line
from resumable._cli._location import DEFAULT_LOCATION, HELP, Location, opened
from resumable._errors import InvalidKeyError, ResumableError
from resumable._stores import Store

Command = Callable[[argparse.Namespace, Store, Location], Awaitable[int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``).

    Every failure ends with one line on stderr, never a traceback.

    Returns:
        The exit status: 0 on success, 1 when the command failed, 2 for a usage error,
        130 when interrupted.
    """
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except CliError as exc:
        fail(str(exc))
    except InvalidKeyError:
        fail(
            f"{getattr(args, 'key', '')!r} is not a key: keys are 1 to 256 characters from a-z, "
            f"A-Z, 0-9 and !-_.'(); `{PROG} list` shows the keys in the store"
        )
    except ResumableError as exc:
        # Our own errors already say which key, which store and what to do.
        fail(one_line(exc))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`resumable list | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"{exc.strerror or one_line(exc)}{where} with --store {args.store}")
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        fail(f"{type(exc).__name__} with --store {args.store}: {one_line(exc)}")


async def _run(args: argparse.Namespace) -> int:
    location = Location.parse(args.store)
    command: Command = args.command
    async with opened(location) as store:
        return await command(args, store, location)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Look at and manage the state that resumable jobs persisted.",
        epilog=HELP,
    )
    parser.add_argument(
        "--store",
        metavar="LOCATION",
        default=DEFAULT_LOCATION,
        help="where the state lives (default: %(default)s)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Command, help_: str) -> Any:
        sub = commands.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        sub.set_defaults(command=run)
        # After the command too (`list --store URL`), as people type it; given there, it wins.
        sub.add_argument(
            "--store", metavar="LOCATION", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return sub

    command("list", _commands.list_, "list the keys with their status, seq, version and age")

    show = command("show", _commands.show, "show one key's record: cursor, status, seq, owner, age")
    show.add_argument("key", metavar="KEY")
    show.add_argument("--json", action="store_true", help="print one JSON object, for scripts")

    reset = command("reset", _commands.reset, "forget one key's record: its next run starts fresh")
    reset.add_argument("key", metavar="KEY")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    export = command("export", _commands.export, "write one key's record, byte for byte, to FILE")
    export.add_argument("key", metavar="KEY")
    export.add_argument("file", metavar="FILE", nargs="?", help="default: standard output")

    import_ = command(
        "import", _commands.import_, "store a record (as written by export) under KEY"
    )
    import_.add_argument("key", metavar="KEY")
    import_.add_argument("file", metavar="FILE", nargs="?", help="default: standard input")
    import_.add_argument("--yes", action="store_true", help="replace a record without asking")

    restore = command(
        "restore", _commands.restore, "move a quarantined record (KEY.corrupt-...) back to its key"
    )
    restore.add_argument("key", metavar="QUARANTINED_KEY")
    restore.add_argument("--yes", action="store_true", help="replace a record without asking")
    return parser
