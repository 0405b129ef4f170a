"""Turns cursors into stored records and back: cattrs for the cursor, JSON for the envelope."""

from __future__ import annotations

import warnings
from base64 import b85encode
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Generic, TypeVar
from uuid import UUID

import cattrs
from cattrs.preconf.json import make_converter as _make_json_converter

from resumable._envelope import (
    FORMAT_MARKER,
    FORMAT_VERSION,
    KeptRecordError,
    NewerRecordError,
    dumps,
    parse,
    raw_record,
    reset_hint,
)
from resumable._errors import CursorTypeError, ResumableWarning
from resumable._record import Record, Status
from resumable._snapshot import Raw

C = TypeVar("C")
T = TypeVar("T")

Upgrade = Callable[[Any], Any]
"""Turns the raw JSON of a cursor of version N into the raw JSON of version N + 1."""


def bytes_as_base85(value: bytes) -> str:
    """Bytes as cattrs' JSON preset stores them: base85 text (named, so that outputs can
    tell resumable's own converter from a job's own)."""
    return b85encode(value).decode()


def make_converter() -> cattrs.Converter:
    """Return a fresh cattrs converter preconfigured for JSON (never the global one).

    On top of cattrs' JSON preset it knows `uuid.UUID`, `decimal.Decimal` and
    `pathlib.PurePath`, which cursors commonly hold and JSON has no type for.
    """
    converter = _make_json_converter()
    converter.register_unstructure_hook(bytes, bytes_as_base85)
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
            dumps(raw)
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
        effects: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Serialize one record of a cursor (or of its `Raw` snapshot).

        *outbox* is the count of outputs the sink held and the JSON texts of those pending
        (`resumable._commit`); they are spliced in as they are, not encoded again. *effects*
        are the fields of the other side effects pending (`resumable._effects`), by name;
        an empty one is left out.

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
        if effects:
            envelope.update((name, field) for name, field in effects.items() if field)
        data = dumps(envelope)
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
