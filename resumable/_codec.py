"""Turns cursors into stored records and back: cattrs for the cursor, JSON for the envelope."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Generic, TypeVar
from uuid import UUID

import cattrs
from cattrs.preconf.json import make_converter as _make_json_converter

from resumable._errors import CorruptStateError, CursorTypeError, ResumableWarning
from resumable._record import Record, Status
from resumable._snapshot import Raw

C = TypeVar("C")
T = TypeVar("T")

FORMAT_MARKER = "resumable"
"""The envelope field that marks a record as ours; its value is the envelope's format version."""

FORMAT_VERSION = 1
_FIELDS = ("key", "cursor", "status", "seq", "owner", "updated_at")
_STATUSES = frozenset({"running", "completed", "failed", "aborted"})

Upgrade = Callable[[Any], Any]
"""Turns the raw JSON of a cursor of version N into the raw JSON of version N + 1."""


class KeptRecordError(CursorTypeError):
    """A readable record this code cannot use and must not move aside: it is left in place.

    A record from a newer version (a rollback must not restart every job from zero) or one
    that needs an upgrade step the job does not have.
    """


class NewerRecordError(KeptRecordError):
    """The record was written by a newer cursor version or format than this code knows."""


def make_converter() -> cattrs.Converter:
    """Return a fresh cattrs converter preconfigured for JSON (never the global one).

    On top of cattrs' JSON preset it knows `uuid.UUID`, `decimal.Decimal` and
    `pathlib.PurePath`, which cursors commonly hold and JSON has no type for.
    """
    converter = _make_json_converter()
    for cls in (UUID, Decimal, PurePosixPath, PureWindowsPath, Path):
        converter.register_unstructure_hook(cls, str)
        converter.register_structure_hook(cls, _from_string(cls))
    return converter


def _from_string(cls: Callable[[str], T]) -> Callable[[Any, Any], T]:
    def structure(value: Any, _: Any) -> T:
        if not isinstance(value, str):
            raise TypeError(f"expected a string for {cls!r}, got {value!r}")
        return cls(value)

    return structure


def reset_hint(store: object, key: str) -> str:
    """Say how to forget the state of *key* in *store*, for error messages."""
    location = getattr(store, "cli_location", None)
    if location is not None:
        return f"`python -m resumable --store {location} reset {key}`"
    return f"`await store.delete({key!r})` on {store!r}"


def _dumps(value: Any) -> bytes:
    """The one JSON form of records: strict (no NaN), compact, UTF-8."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def parse(data: bytes, key: str, store: object) -> dict[str, Any]:
    """Parse and check a stored envelope without interpreting the cursor.

    Raises:
        CorruptStateError: The bytes are not a resumable record.
    """
    where = f"The record of key {key!r} in {store!r}"
    try:
        envelope = json.loads(data)
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


class Codec(Generic[C]):
    """Encodes one job's cursors into records and decodes its records into cursors."""

    def __init__(
        self,
        key: str,
        store: object,
        cursor_type: Any,
        converter: cattrs.Converter,
        *,
        version: int = 1,
        upgrade: Mapping[int, Upgrade] | None = None,
        warn_size: int = 64 * 1024,
        max_size: int = 1024 * 1024,
    ) -> None:
        self.key = key
        self.store = store
        self.cursor_type = cursor_type
        self.converter = converter
        self.version = version
        self.upgrade = dict(upgrade or {})
        self.warn_size = warn_size
        self.max_size = max_size
        self._warned = False
        self._type_name = getattr(cursor_type, "__name__", None) or repr(cursor_type)
        self._as_type = f"as the cursor type {self._type_name}"

    def raw(self, cursor: C, origin: str = "yielded") -> Any:
        """Turn *cursor* into the JSON data it is stored as (a copy that cannot change).

        *origin* says where the cursor came from, for the error message: ``"yielded"``,
        ``"advanced"``, or ``"fresh-start"`` (the default of the ``cursor`` parameter).

        Raises:
            CursorTypeError: The converter cannot turn it into JSON that the store can hold.
        """
        try:
            raw = self.converter.unstructure(cursor, unstructure_as=self.cursor_type)
            _dumps(raw)
        except Exception as exc:
            raise CursorTypeError(
                f"{self._said(cursor, origin)}, which cannot be stored as JSON "
                f"{self._as_type}: {type(exc).__name__}: {exc}. Use cursors of the cursor type "
                "that JSON can hold (no NaN or infinity, no unpaired surrogates in strings), or "
                "pass a cattrs converter that knows the type with converter=."
            ) from exc
        return raw

    def check(self, cursor: C, origin: str = "yielded") -> None:
        """Check that *cursor* survives the trip to JSON and back as the cursor type.

        Raises:
            CursorTypeError: It does not (a value of another type, say).
        """
        raw = self.raw(cursor, origin)
        try:
            back = self.converter.structure(raw, self.cursor_type)
        except Exception as exc:
            raise CursorTypeError(
                f"{self._said(cursor, origin)}, which does not come back from JSON "
                f"{self._as_type}: {exc}. Use cursors of the cursor type (the annotation of "
                "`cursor`, or cursor_type=), or fix the annotation."
            ) from exc
        # Only types with a value equality can be compared; others passed the structure step.
        if getattr(type(back), "__eq__", None) is not object.__eq__ and back != cursor:
            raise CursorTypeError(
                f"{self._said(cursor, origin)}, which comes back from JSON as {back!r}. Use "
                f"cursors of the cursor type ({self._type_name}), or fix the annotation of "
                "`cursor`."
            )

    def restore(self, snapshot: Any) -> C:
        """Return the cursor a snapshot holds (a `Raw` copy is structured back)."""
        if isinstance(snapshot, Raw):
            cursor: C = self.converter.structure(snapshot.data, self.cursor_type)
            return cursor
        return snapshot  # type: ignore[no-any-return]

    def encode(
        self,
        snapshot: Any,
        *,
        status: Status,
        seq: int,
        owner: str,
        generation: int = 0,
        outbox: tuple[int, Sequence[str]] | None = None,
    ) -> bytes:
        """Serialize one record of a cursor (or of its `Raw` snapshot).

        *outbox* is the count of outputs the sink held and the JSON texts of those pending
        (`resumable._commit`); they are spliced in as they are, not encoded again.

        Raises:
            CursorTypeError: The cursor cannot be serialized, or the record is larger than
                ``max_size``.
        """
        raw = snapshot.data if isinstance(snapshot, Raw) else self.raw(snapshot)
        envelope = {
            FORMAT_MARKER: FORMAT_VERSION,
            "key": self.key,
            "version": self.version,
            "status": status,
            "seq": seq,
            "generation": generation,
            "owner": owner,
            "updated_at": datetime.now(UTC).isoformat(),
            "cursor": raw,
        }
        data = _dumps(envelope)
        size = len(data)
        if outbox is not None:
            delivered, pending = outbox
            data = b'%s,"outbox":{"delivered":%d,"pending":[%s]}}' % (
                data[:-1],
                delivered,
                ",".join(pending).encode(),
            )
        if len(data) > self.max_size:
            raise CursorTypeError(
                f"The record of job {self.key!r} serializes to {len(data)} bytes (its cursor "
                f"{size}, its pending outputs the rest), more than max_size={self.max_size}; it "
                f"was not written to {self.store!r}. Keep the cursor small (a position, not the "
                "data) and push fewer outputs between two cursors, or raise max_size= if the "
                "store takes it."
            )
        if size > self.warn_size and not self._warned:
            self._warned = True
            warnings.warn(
                f"The cursor of job {self.key!r} serializes to {size} bytes, more than "
                f"warn_size={self.warn_size}; every save writes it whole to {self.store!r}. "
                "Keep the cursor to a position, or raise warn_size= to silence this.",
                ResumableWarning,
                stacklevel=2,
            )
        return data

    def _said(self, cursor: object, origin: str) -> str:
        if origin == "fresh-start":
            where = "has the fresh-start cursor (the default of its `cursor` parameter)"
        else:
            where = origin
        return f"Job {self.key!r} {where} {cursor!r} ({type(cursor).__name__})"

    def decode(self, data: bytes) -> Record[C]:
        """Read a stored record, upgrade its cursor to this version and structure it.

        Raises:
            CorruptStateError: The record is unreadable.
            CursorTypeError: The record is newer than this code, an upgrade step is missing
                or fails, or the cursor does not fit the cursor type.
        """
        envelope = parse(data, self.key, self.store)
        record = raw_record(envelope, self.key, self.store)
        raw = self._upgraded(record.cursor, record.version)
        try:
            cursor = self.converter.structure(raw, self.cursor_type)
        except Exception as exc:
            raise CursorTypeError(
                f"The stored cursor of job {self.key!r} in {self.store!r} is {raw!r}, which is not "
                f"a valid {self._type_name} ({exc}). If the cursor type changed, bump version= "
                f"and give an upgrade= function; otherwise reset it with "
                f"{reset_hint(self.store, self.key)}, or run with on_corrupt='quarantine'."
            ) from exc
        return Record(
            key=record.key,
            cursor=cursor,
            status=record.status,
            seq=record.seq,
            owner=record.owner,
            updated_at=record.updated_at,
            version=self.version,
        )

    def _upgraded(self, raw: Any, version: int) -> Any:
        if version > self.version:
            raise NewerRecordError(
                f"The record of job {self.key!r} in {self.store!r} has cursor version {version}, "
                f"newer than this code's version={self.version}. It was left untouched; run the "
                "newer code, or reset the key if you really mean to go back."
            )
        while version < self.version:
            step = self.upgrade.get(version)
            if step is None:
                raise KeptRecordError(
                    f"The record of job {self.key!r} in {self.store!r} has cursor version "
                    f"{version}, but upgrade= has no function for {version} -> {version + 1}. "
                    f"Add upgrade={{{version}: fn}} to the job."
                )
            try:
                raw = step(raw)
            except Exception as exc:
                raise CursorTypeError(
                    f"Upgrading the cursor of job {self.key!r} from version {version} to "
                    f"{version + 1} failed on {raw!r}: {exc}. The record was left untouched."
                ) from exc
            version += 1
        return raw
