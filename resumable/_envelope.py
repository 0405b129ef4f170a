"""The envelope of a stored record: its fields, their checks, and its one JSON form.

Every record is a JSON object: the format marker and version, the job's key and cursor
version, ``status``, ``seq``, ``generation``, ``owner``, ``updated_at`` and the ``cursor``;
with outputs, the ``outbox`` (`resumable._commit`); with other side effects pending, their
fields (``charges``: `resumable._effects`). `parse` checks one without reading the cursor,
which is the codec's (`resumable._codec`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from resumable._errors import CorruptStateError, CursorTypeError, StaleWriterError
from resumable._record import Record
from resumable._stores import HasCliLocation

log = logging.getLogger("resumable")

FORMAT_MARKER = "resumable"
"""The envelope field that marks a record as ours; its value is the envelope's format version."""

FORMAT_VERSION = 1
_FIELDS = ("key", "cursor", "status", "seq", "owner", "updated_at")
_STATUSES = frozenset({"running", "completed", "failed", "aborted"})


class KeptRecordError(CursorTypeError):
    """A readable record this code cannot use and must not move aside: it is left in place.

    A record from a newer version (a rollback must not restart every job from zero) or one
    that needs an upgrade step the job does not have.
    """


class NewerRecordError(KeptRecordError):
    """The record was written by a newer cursor version or format than this code knows."""


def reset_hint(store: object, key: str) -> str:
    """Say how to forget the state of *key* in *store*, for error messages."""
    location = store.cli_location if isinstance(store, HasCliLocation) else None
    if location is not None:
        return f"`python -m resumable --store {location} reset {key}`"
    return f"`await store.delete({key!r})` on {store!r}"


def dumps(value: Any) -> bytes:
    """The one JSON form of records: strict (no NaN), compact, UTF-8."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _not_json(constant: str) -> Any:
    """Refuse Python's extensions to JSON: records are strict JSON, as `dumps` writes them."""
    raise ValueError(f"{constant} is not a JSON value")


def check_writable(envelope: Mapping[str, Any]) -> None:
    """Check that a parsed record can be written back as it is (no lone surrogate in it).

    Raises:
        ValueError: It cannot.
    """
    try:
        dumps(envelope)
    except UnicodeEncodeError as exc:
        raise ValueError(f"a string in it cannot be written as UTF-8 ({exc.reason})") from exc


def parse(data: bytes, key: str, store: object) -> dict[str, Any]:
    """Parse and check a stored envelope without interpreting the cursor.

    Raises:
        CorruptStateError: The bytes are not a resumable record.
    """
    where = f"The record of key {key!r} in {store!r}"
    try:
        envelope = json.loads(data, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptStateError(
            f"{where} is not valid JSON ({exc}). It was left as it is; look at it, then reset "
            f"it with {reset_hint(store, key)} or run the job with on_corrupt='quarantine'."
        ) from exc
    if not isinstance(envelope, dict) or FORMAT_MARKER not in envelope:
        raise CorruptStateError(
            f"{where} is JSON but not a resumable record (no {FORMAT_MARKER!r} field). It was "
            f"left as it is; if the key belongs to something else, give the job another key, "
            f"otherwise reset it with {reset_hint(store, key)}."
        )
    missing = [name for name in _FIELDS if name not in envelope]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if envelope.get("status", "running") not in _STATUSES:
        problems.append(f"unknown status {envelope['status']!r}")
    for name in ("seq", "version", "generation"):
        value = envelope.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name} is {value!r}, not a whole number")
    if not isinstance(envelope.get("owner", ""), str):
        problems.append("owner is not a string")
    if "outbox" in envelope and not _valid_outbox(envelope["outbox"]):
        problems.append("outbox is not {'delivered': count, 'pending': [items]}")
    if "charges" in envelope and not _valid_charges(envelope["charges"]):
        problems.append("charges is not {event: {'charged': count, 'pending': [[id, count]]}}")
    marker = envelope.get(FORMAT_MARKER)
    if isinstance(marker, int) and not isinstance(marker, bool) and marker > FORMAT_VERSION:
        raise NewerRecordError(
            f"{where} has envelope format {marker}, newer than this resumable's "
            f"{FORMAT_VERSION}. It was left untouched; upgrade resumable to run this job."
        )
    if marker != FORMAT_VERSION:
        problems.append(
            f"envelope format {envelope.get(FORMAT_MARKER)!r} is not {FORMAT_VERSION} "
            "(written by a newer resumable?)"
        )
    if problems:
        raise CorruptStateError(
            f"{where} is damaged: {'; '.join(problems)}. It was left as it is; reset it with "
            f"{reset_hint(store, key)} or run the job with on_corrupt='quarantine'."
        )
    return envelope


def _valid_outbox(field: object) -> bool:
    if not isinstance(field, dict):
        return False
    delivered, pending = field.get("delivered"), field.get("pending")
    return (
        isinstance(delivered, int)
        and not isinstance(delivered, bool)
        and delivered >= 0
        and isinstance(pending, list)
    )


def _valid_charges(field: object) -> bool:
    def count(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    return isinstance(field, dict) and all(
        isinstance(event, dict)
        and count(event.get("charged"))
        and isinstance(event.get("pending"), list)
        and all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and count(c[1])
            for c in event["pending"]
        )
        for event in field.values()
    )


def raw_record(envelope: Mapping[str, Any], key: str, store: object) -> Record[Any]:
    """Build a `Record` whose cursor is the raw JSON, from a parsed envelope."""
    try:
        updated_at = datetime.fromisoformat(envelope["updated_at"])
    except (TypeError, ValueError) as exc:
        raise CorruptStateError(
            f"The record of key {key!r} in {store!r} has an unreadable updated_at "
            f"{envelope['updated_at']!r}. It was left as it is; reset it with "
            f"{reset_hint(store, key)}."
        ) from exc
    if updated_at.tzinfo is None:  # hand-edited: we only ever write UTC
        updated_at = updated_at.replace(tzinfo=UTC)
    return Record(
        key=envelope["key"],
        cursor=envelope["cursor"],
        status=envelope["status"],
        seq=envelope["seq"],
        owner=envelope["owner"],
        updated_at=updated_at,
        version=envelope.get("version", 1),
    )


def check_owner(
    current: bytes | None, key: str, store: object, *, generation: int, owner: str
) -> None:
    """Check that the record *current* still belongs to the run of *generation* and *owner*.

    The fencing check of every write: a newer generation, or another owner of the same one,
    took the key over. A record of an older generation (a store that could not check
    atomically let an older run write) is logged: the run writes its own state back.

    Raises:
        StaleWriterError: Another run owns the key now, or its record was deleted.
    """
    if current is None:
        raise StaleWriterError(
            f"The record of job {key!r} in {store!r} was deleted while the job ran (a "
            "reset?). This run stops rather than write it back; start the job again to begin "
            "from scratch."
        )
    envelope = parse(current, key, store)
    found = envelope.get("generation", 0)
    if found > generation or (found == generation and envelope["owner"] != owner):
        raise StaleWriterError(
            f"Job {key!r} in {store!r} was taken over by another run ({envelope['owner']}, "
            f"seq {envelope['seq']}); this run ({owner}) stops without overwriting its "
            "progress. Run one instance per key, or give concurrent runs different keys."
        )
    if found < generation:
        log.warning(
            "job %r: an older run (%s) wrote %r after this run took the key over; this run "
            "writes its own state back",
            key,
            envelope["owner"],
            store,
        )
