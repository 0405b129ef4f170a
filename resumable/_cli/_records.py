"""Reading records out of a store without knowing the jobs that wrote them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs

from resumable._cli._errors import CliError, first_clause, one_line
from resumable._cli._location import Location
from resumable._envelope import FORMAT_MARKER, check_writable, parse, raw_record
from resumable._errors import InvalidKeyError, ResumableError
from resumable._record import Record
from resumable._stores import Store

QUARANTINE_MARK = ".corrupt-"
"""What the engine puts between the original key and a timestamp when it quarantines a record."""


@attrs.frozen
class Listing:
    """What `scan` found in a store.

    Args:
        records: Each key with its record, or ``None`` when the record is resumable's (or
            could be) but cannot be read.
        skipped: Each entry that is not a record of resumable's, with the reason.
    """

    records: list[tuple[str, Record[Any] | None]]
    skipped: list[tuple[str, str]]


def decode(data: bytes, key: str, store: Store, *, where: str | None = None) -> Record[Any]:
    """Read a record without knowing its cursor type.

    Raises:
        CorruptStateError: It is unreadable; the message says where it is when *where* is given.
    """
    try:
        return raw_record(parse(data, key, store), key, store)
    except ResumableError as exc:
        if where is None:
            raise
        raise type(exc)(f"{one_line(exc)} (file: {where})") from exc


def importable(data: bytes, key: str, store: Store, source: str) -> Record[Any]:
    """Check that *data*, read from *source*, is a record fit to be stored; return it.

    Raises:
        CliError: It is not a resumable record, or its ``updated_at`` has no timezone.
    """
    try:
        envelope = parse(data, key, store)
        record = raw_record(envelope, key, store)
    except ResumableError as exc:
        raise CliError(
            f"{source} does not hold a resumable record ({first_clause(exc)}); nothing was written"
        ) from exc
    try:
        check_writable(envelope)
    except ValueError as exc:
        raise CliError(
            f"{source} holds a record that no run could write back: {exc}; nothing was written"
        ) from exc
    if datetime.fromisoformat(envelope["updated_at"]).tzinfo is None:
        raise CliError(
            f"{source} has updated_at {envelope['updated_at']!r} without a timezone; records "
            f"carry UTC times such as {record.updated_at.isoformat()!r}: add the offset and "
            "import again; nothing was written"
        )
    return record


async def load(store: Store, key: str, location: Location) -> bytes:
    """Return *key*'s record.

    Raises:
        CliError: There is none (the message lists the keys there are), or it cannot be read.
    """
    try:
        data = await store.load(key)
    except OSError as exc:
        raise CliError(
            f"cannot read the record of key {key!r} in {location.describe()}: "
            f"{exc.strerror or one_line(exc)}{f' ({exc.filename})' if exc.filename else ''}"
        ) from exc
    if data is not None:
        return data
    keys = await store.keys()
    known = f"keys there: {', '.join(keys[:10])}{', ...' if len(keys) > 10 else ''}"
    raise CliError(
        f"no record for key {key!r} in {location.describe()} "
        f"({known if keys else 'the store is empty'})"
    )


async def scan(store: Store, location: Location) -> Listing:
    """Read every record in *store*, setting aside what is not a record of resumable's.

    One entry that cannot be read (a foreign file, a directory, a name that is no key) never
    hides the others.
    """
    records: list[tuple[str, Record[Any] | None]] = []
    skipped: list[tuple[str, str]] = []
    for key in await store.keys():
        try:
            data = await store.load(key)
        except InvalidKeyError:
            skipped.append(
                (key, "its name is not a key (1 to 256 characters from a-z, A-Z, 0-9 and !-_.'())")
            )
            continue
        except IsADirectoryError:
            skipped.append((key, "it is a directory"))
            continue
        except OSError as exc:
            skipped.append((key, f"it cannot be read ({exc.strerror or one_line(exc)})"))
            continue
        if data is None:  # deleted since keys() listed it
            continue
        try:
            records.append((key, decode(data, key, store)))
        except ResumableError:
            if _is_foreign(data):
                skipped.append((key, "it is JSON but not a resumable record"))
            else:
                records.append((key, None))
    return Listing(records, [(location.entry(key), reason) for key, reason in skipped])


def _is_foreign(data: bytes) -> bool:
    """Whether *data* is JSON that is not a resumable envelope (and so no torn record of ours)."""
    try:
        envelope = json.loads(data)
    except ValueError:
        return False
    return not (isinstance(envelope, dict) and FORMAT_MARKER in envelope)
