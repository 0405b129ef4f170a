"""The command line: look at and manage the state that jobs persisted in a store.

``python -m resumable [--store LOCATION] COMMAND``, also installed as ``resumable``. Every
command reads and writes through the same `Store` a job uses, so what it shows is what the
next run will resume from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn

from resumable._codec import parse, raw_record
from resumable._errors import ResumableError
from resumable._record import Record
from resumable._stores import FileStore, Store

PROG = "resumable"
DEFAULT_LOCATION = ".resumable"
QUARANTINE_MARK = ".corrupt-"
"""What the engine puts between the original key and a timestamp when it quarantines a record."""

_APIFY_PREFIX = "apify:"
_CURSOR_WIDTH = 40


class CliError(Exception):
    """A reason to stop, said in one line on stderr; the exit status is 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when the command failed, 2 for a usage error.
    """
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.command
    try:
        return asyncio.run(command(args))
    except CliError as exc:
        _fail(str(exc))
    except ResumableError as exc:
        # Our own errors already say which key, which store and what to do.
        _fail(" ".join(str(exc).split()))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look at and manage the state that resumable jobs persisted.",
        epilog="LOCATION is a FileStore directory (default: .resumable) or apify:DIR for the "
        "default key-value store of Apify/Crawlee local storage in DIR (e.g. apify:./storage).",
    )
    parser.add_argument(
        "--store",
        metavar="LOCATION",
        default=DEFAULT_LOCATION,
        help="where the state lives (default: %(default)s)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], Awaitable[int]], help_: str) -> Any:
        sub = commands.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        sub.set_defaults(command=run)
        return sub

    command("list", _list, "list the keys with their status, seq, version and age")

    show = command("show", _show, "show one key's record: cursor, status, seq, owner, age")
    show.add_argument("key", metavar="KEY")
    show.add_argument("--json", action="store_true", help="print one JSON object, for scripts")

    reset = command("reset", _reset, "forget one key's record: its next run starts fresh")
    reset.add_argument("key", metavar="KEY")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    export = command("export", _export, "write one key's record, byte for byte, to FILE")
    export.add_argument("key", metavar="KEY")
    export.add_argument("file", metavar="FILE", nargs="?", help="default: standard output")

    import_ = command("import", _import, "store a record (as written by export) under KEY")
    import_.add_argument("key", metavar="KEY")
    import_.add_argument("file", metavar="FILE", nargs="?", help="default: standard input")
    import_.add_argument("--yes", action="store_true", help="replace a record without asking")

    restore = command(
        "restore", _restore, "move a quarantined record (KEY.corrupt-...) back to its key"
    )
    restore.add_argument("key", metavar="QUARANTINED_KEY")
    restore.add_argument("--yes", action="store_true", help="replace a record without asking")
    return parser


# -- commands -----------------------------------------------------------------------------


async def _list(args: argparse.Namespace) -> int:
    store = await _open(args.store)
    rows: list[tuple[str, ...]] = []
    others = 0
    now = datetime.now(UTC)
    for key in await store.keys():
        data = await store.load(key)
        if data is None:  # deleted since keys() listed it
            continue
        note = "quarantined: `restore` moves it back" if QUARANTINE_MARK in key else ""
        try:
            record = _decode(data, key, store)
        except ResumableError:
            if not _looks_like_json(data) or _is_ours(data):
                damage = f"damaged: `show {key}` says how"
                rows.append((key, "unreadable", "", "", "", "", note or damage))
            else:
                others += 1
            continue
        rows.append(
            (
                key,
                record.status,
                str(record.seq),
                str(record.version),
                _age(now - record.updated_at),
                _short(_dump(record.cursor)),
                note,
            )
        )
    if not rows:
        print(f"No records in {_describe(args.store)}.")
    else:
        headers = ("KEY", "STATUS", "SEQ", "VERSION", "AGE", "CURSOR", "NOTE")
        _table([headers, *rows])
    if others:
        print(f"({others} other record(s) in the store do not belong to resumable.)")
    return 0


async def _show(args: argparse.Namespace) -> int:
    store = await _open(args.store)
    data = await _load(store, args.key, args.store)
    record = _decode(data, args.key, store, where=_where(args.store, args.key))
    age = datetime.now(UTC) - record.updated_at
    if args.json:
        document = {
            "key": args.key,
            "cursor": record.cursor,
            "status": record.status,
            "seq": record.seq,
            "owner": record.owner,
            "updated_at": record.updated_at.isoformat(),
            "version": record.version,
            "age_seconds": round(age.total_seconds(), 3),
            "store": args.store,
        }
        print(json.dumps(document, ensure_ascii=False))
        return 0
    rows = [
        ("key", args.key),
        ("cursor", _dump(record.cursor)),
        ("status", record.status),
        ("seq", str(record.seq)),
        ("owner", record.owner),
        ("version", str(record.version)),
        ("updated_at", record.updated_at.isoformat(timespec="seconds")),
        ("age", _age(age) + " ago"),
        ("store", _describe(args.store)),
    ]
    if QUARANTINE_MARK in args.key:
        rows.append(("note", f"quarantined; `{PROG} restore {args.key}` moves it back"))
    _table(rows)
    return 0


async def _reset(args: argparse.Namespace) -> int:
    store = await _open(args.store)
    data = await _load(store, args.key, args.store)
    try:
        summary = f"cursor {_short(_dump(_decode(data, args.key, store).cursor))}"
    except ResumableError:
        summary = "an unreadable record"
    _confirm(
        args,
        f"Forget the state of {args.key!r} ({summary}) in {_describe(args.store)}? "
        "Its next run starts from scratch.",
    )
    await store.delete(args.key)
    print(f"Reset {args.key!r}: its next run starts from scratch.", file=sys.stderr)
    return 0


async def _export(args: argparse.Namespace) -> int:
    store = await _open(args.store)
    data = await _load(store, args.key, args.store)
    try:
        _decode(data, args.key, store)
    except ResumableError as exc:
        # Exporting a damaged record is how one repairs it by hand: warn, do not refuse.
        print(f"{PROG}: warning: {_first_clause(exc)}; exported as it is", file=sys.stderr)
    if args.file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(args.file).write_bytes(data)  # noqa: ASYNC240 - the loop runs nothing else
        print(f"Exported {args.key!r} to {args.file} ({len(data)} bytes).", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace) -> int:
    if args.file is None:
        data = sys.stdin.buffer.read()
        source = "standard input"
    else:
        try:
            data = Path(args.file).read_bytes()  # noqa: ASYNC240 - the loop runs nothing else
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
        source = args.file
    store = await _open(args.store)
    try:
        record = _decode(data, args.key, store)
    except ResumableError as exc:
        raise CliError(
            f"{source} does not hold a resumable record ({_first_clause(exc)}); nothing was written"
        ) from exc
    if await store.load(args.key) is not None:
        _confirm(
            args,
            f"Replace the record of {args.key!r} in {_describe(args.store)} with the one from "
            f"{source} (cursor {_short(_dump(record.cursor))})?",
        )
    if record.key != args.key:
        print(
            f"{PROG}: note: the record was written for key {record.key!r}; it is stored under "
            f"{args.key!r}",
            file=sys.stderr,
        )
    await store.save(args.key, data)
    print(f"Imported {args.key!r} from {source}.", file=sys.stderr)
    return 0


async def _restore(args: argparse.Namespace) -> int:
    quarantined: str = args.key
    original, mark, _ = quarantined.rpartition(QUARANTINE_MARK)
    if not mark or not original:
        raise CliError(
            f"{quarantined!r} is not a quarantined key (those look like KEY{QUARANTINE_MARK}"
            f"TIMESTAMP); `{PROG} list` marks them"
        )
    store = await _open(args.store)
    data = await _load(store, quarantined, args.store)
    try:
        _decode(data, quarantined, store)
    except ResumableError as exc:
        raise CliError(
            f"the quarantined record is unreadable ({_first_clause(exc)}), so restoring it "
            f"would only fail again; `{PROG} export {quarantined} FILE`, repair FILE, then "
            f"`{PROG} import {original} FILE`"
        ) from exc
    if await store.load(original) is not None:
        _confirm(
            args,
            f"Key {original!r} has a newer record; replace it with the quarantined one?",
        )
    await store.save(original, data)
    await store.delete(quarantined)
    print(f"Restored {quarantined!r} to {original!r}.", file=sys.stderr)
    return 0


# -- stores -------------------------------------------------------------------------------


async def _open(location: str) -> Store:
    """Open the store at *location* without creating anything.

    Raises:
        CliError: Nothing is there.
    """
    if location.startswith(_APIFY_PREFIX):
        return await _open_apify(Path(location[len(_APIFY_PREFIX) :] or "."))
    directory = Path(location)
    if not directory.is_dir():  # noqa: ASYNC240 - the loop runs nothing else
        raise CliError(
            f"no store at {location}: the directory does not exist (pass --store with the "
            "directory of your FileStore, or apify:DIR for Apify/Crawlee local storage)"
        )
    return FileStore(directory)


async def _open_apify(directory: Path) -> Store:
    """Open the default key-value store of the Crawlee/Apify local storage in *directory*."""
    kvs_dir = directory / "key_value_stores" / "default"
    if not kvs_dir.is_dir():
        raise CliError(
            f"no Apify/Crawlee local storage at {directory}: {kvs_dir} does not exist (pass "
            "the directory that holds key_value_stores/, usually ./storage)"
        )
    try:
        from resumable.apify import ApifyStore  # noqa: PLC0415
    except ImportError as exc:
        raise CliError(
            f"apify: stores need the apify extra ({exc}); `pip install 'resumable[apify]'`"
        ) from exc
    # local() opens the store without purging it, as an Actor started locally would.
    store = ApifyStore.local(directory)
    await store.open()
    return store


async def _load(store: Store, key: str, location: str) -> bytes:
    """Return *key*'s record.

    Raises:
        CliError: There is none; the message lists the keys there are.
    """
    data = await store.load(key)
    if data is not None:
        return data
    keys = await store.keys()
    known = f"keys there: {', '.join(keys[:10])}{', ...' if len(keys) > 10 else ''}"
    raise CliError(
        f"no record for key {key!r} in {_describe(location)} "
        f"({known if keys else 'the store is empty'})"
    )


def _decode(data: bytes, key: str, store: Store, *, where: str | None = None) -> Record[Any]:
    """Read a record without knowing its cursor type.

    Raises:
        CorruptStateError: It is unreadable; the message says where it is.
    """
    try:
        return raw_record(parse(data, key, store), key, store)
    except ResumableError as exc:
        if where is None:
            raise
        raise type(exc)(f"{' '.join(str(exc).split())} (file: {where})") from exc


def _where(location: str, key: str) -> str:
    """Say where *key*'s record lives on disk."""
    if location.startswith(_APIFY_PREFIX):
        directory = Path(location[len(_APIFY_PREFIX) :] or ".")
        name = urllib.parse.quote(key, safe="")
        return str((directory / "key_value_stores" / "default" / name).resolve())
    return str(FileStore(location).path(key).resolve())


def _describe(location: str) -> str:
    if location.startswith(_APIFY_PREFIX):
        return f"the default key-value store of {location[len(_APIFY_PREFIX) :] or '.'}"
    return location


def _is_ours(data: bytes) -> bool:
    try:
        envelope = json.loads(data)
    except ValueError:
        return False
    return isinstance(envelope, dict) and "resumable" in envelope


def _looks_like_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


# -- output -------------------------------------------------------------------------------


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Go on only if the user says yes (or passed ``--yes``).

    Raises:
        CliError: The answer was no, or nobody can answer (stdin is not a terminal).
    """
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            f"{question} Not without confirmation: standard input is not a terminal; "
            "pass --yes to go ahead"
        )
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("nothing changed")


def _table(rows: Sequence[Sequence[str]], out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=out)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _short(text: str, width: int = _CURSOR_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_clause(exc: BaseException) -> str:
    """The first sentence of an error message, for a table cell or a one-line warning."""
    text = " ".join(str(exc).split())
    return text.split(". ", 1)[0]


def _age(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
