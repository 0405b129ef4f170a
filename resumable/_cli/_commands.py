"""The commands: list, show, reset, export, import and restore."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from resumable._cli._errors import PROG, CliError, first_clause, say
from resumable._cli._location import Location
from resumable._cli._records import QUARANTINE_MARK, decode, importable, load, scan
from resumable._cli._render import age, dump, short, table
from resumable._errors import ResumableError
from resumable._redact import redact
from resumable._stores import Store

OUTPUTS_STAY = (
    "Outputs it already wrote (files, dataset items) stay where they are; remove them yourself "
    "if the fresh run must not add to them."
)


async def list_(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Print one row per key; name on stderr the entries that are not resumable's records."""
    listing = await scan(store, location)
    now = datetime.now(UTC)
    rows: list[tuple[str, ...]] = []
    for key, record in listing.records:
        note = "quarantined: `restore` moves it back" if QUARANTINE_MARK in key else ""
        if record is None:
            rows.append(
                (key, "unreadable", "", "", "", "", note or f"damaged: `show {key}` says how")
            )
            continue
        cursor = short(dump(record.cursor))
        when = age(now - record.updated_at)
        rows.append((key, record.status, str(record.seq), str(record.version), when, cursor, note))
    if rows:
        table([("KEY", "STATUS", "SEQ", "VERSION", "AGE", "CURSOR", "NOTE"), *rows])
    elif not listing.skipped:
        print(f"No records in {location.describe()}.")
    else:
        print(f"No resumable records in {location.describe()}.")
    for entry, reason in listing.skipped:
        say(f"skipped {entry!r} in {location.describe()}: {reason}")
    return 0


async def show(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Print one record as a table, or as one JSON object with ``--json``."""
    try:
        data = await load(store, args.key, location)
    except CliError:
        if args.json:  # a script reading the output still reads JSON: there is no record
            print("null")
        raise
    record = decode(data, args.key, store, where=location.where(args.key))
    elapsed = datetime.now(UTC) - record.updated_at
    if args.json:
        document = {
            "key": args.key,
            "cursor": record.cursor,
            "status": record.status,
            "seq": record.seq,
            "owner": record.owner,
            "updated_at": record.updated_at.isoformat(),
            "version": record.version,
            "age_seconds": round(elapsed.total_seconds(), 3),
            "store": redact(location.text),
        }
        print(json.dumps(document, ensure_ascii=False))
        return 0
    rows = [
        ("key", args.key),
        ("cursor", dump(record.cursor)),
        ("status", record.status),
        ("seq", str(record.seq)),
        ("owner", record.owner),
        ("version", str(record.version)),
        ("updated_at", record.updated_at.isoformat(timespec="seconds")),
        ("age", age(elapsed) + " ago"),
        ("store", location.describe()),
    ]
    if QUARANTINE_MARK in args.key:
        rows.append(("note", f"quarantined; `{PROG} restore {args.key}` moves it back"))
    table(rows)
    return 0


async def reset(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Delete one key's record after confirmation."""
    data = await load(store, args.key, location)
    try:
        summary = f"cursor {short(dump(decode(data, args.key, store).cursor))}"
    except ResumableError:
        summary = "an unreadable record"
    confirm(
        args,
        f"Forget the state of {args.key!r} ({summary}) in {location.describe()}? "
        f"Its next run starts from scratch. {OUTPUTS_STAY}",
    )
    await store.delete(args.key)
    print(f"Reset {args.key!r}: its next run starts from scratch. {OUTPUTS_STAY}", file=sys.stderr)
    return 0


async def export(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Write one key's record byte for byte to a file or stdout."""
    data = await load(store, args.key, location)
    try:
        decode(data, args.key, store)
    except ResumableError as exc:
        # Exporting a damaged record is how one repairs it by hand: warn, do not refuse.
        say(f"warning: {first_clause(exc)}; exported as it is")
    if args.file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            Path(args.file).write_bytes(data)  # noqa: ASYNC240 - the loop runs nothing else
        except OSError as exc:
            raise CliError(f"cannot write {args.file}: {exc.strerror or exc}") from exc
        print(f"Exported {args.key!r} to {args.file} ({len(data)} bytes).", file=sys.stderr)
    return 0


async def import_(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Store a record read from a file or stdin, after checking it."""
    if args.file is None:
        data = sys.stdin.buffer.read()
        source = "standard input"
    else:
        try:
            data = Path(args.file).read_bytes()  # noqa: ASYNC240 - the loop runs nothing else
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
        source = args.file
    record = importable(data, args.key, store, source)
    if await store.load(args.key) is not None:
        confirm(
            args,
            f"Replace the record of {args.key!r} in {location.describe()} with the one from "
            f"{source} (cursor {short(dump(record.cursor))})?",
        )
    if record.key != args.key:
        say(f"note: the record was written for key {record.key!r}; it is stored under {args.key!r}")
    await store.save(args.key, data)
    print(f"Imported {args.key!r} from {source}.", file=sys.stderr)
    return 0


async def restore(args: argparse.Namespace, store: Store, location: Location) -> int:
    """Move a quarantined record back to the key it was taken from."""
    quarantined: str = args.key
    original, mark, _ = quarantined.rpartition(QUARANTINE_MARK)
    if not mark or not original:
        raise CliError(
            f"{quarantined!r} is not a quarantined key (those look like KEY{QUARANTINE_MARK}"
            f"TIMESTAMP); `{PROG} list` marks them"
        )
    data = await load(store, quarantined, location)
    try:
        decode(data, quarantined, store)
    except ResumableError as exc:
        raise CliError(
            f"the quarantined record is unreadable ({first_clause(exc)}), so restoring it "
            f"would only fail again; `{PROG} export {quarantined} FILE`, repair FILE, then "
            f"`{PROG} import {original} FILE`"
        ) from exc
    if await store.load(original) is not None:
        confirm(args, f"Key {original!r} has a newer record; replace it with the quarantined one?")
    await store.save(original, data)
    await store.delete(quarantined)
    print(f"Restored {quarantined!r} to {original!r}.", file=sys.stderr)
    return 0


def confirm(args: argparse.Namespace, question: str) -> None:
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
