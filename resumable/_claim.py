"""Taking a key over: load its record, check it, and make the run its owner.

Atomically with loading it where the store can (its optional ``update``): the claim record
is made from what the key holds at that instant, so a newer run takes over however busy an
older run keeps the key, and never writes back a cursor older than the one it took over.
A record the codec cannot read is moved aside first when the job asks for quarantine. A job
with outputs reads its sink before the claim (an outbox field must be checked against what
the sink holds), then claims on the condition that the record did not change meanwhile; a
sink that disagrees with a record changed meanwhile is read again with the new record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from resumable._codec import Codec
from resumable._commit import Commit
from resumable._effects import Effects, fields
from resumable._envelope import KeptRecordError, parse
from resumable._errors import CorruptStateError, CursorTypeError, ResumableError
from resumable._record import Record
from resumable._retry import Conflict, retrying
from resumable._snapshot import Raw
from resumable._stores import Change, Store, max_key_length


class Writer(Protocol):
    """What a claim needs of the writer (`resumable._writer.Writer`)."""

    key: str
    store: Store
    codec: Codec[Any]
    commit: Commit | None
    owner: str
    quarantine: bool

    async def load(self) -> bytes | None:
        """Load the key's record bytes."""
        ...

    def effects_of(self, name: str) -> Effects:
        """The run's side effects of record field *name*."""
        ...

    def effect_fields(self) -> Mapping[str, Any]:
        """What a record written now holds of the run's side effects, by field."""
        ...


log = logging.getLogger("resumable")


@attrs.frozen
class Taken:
    """What a claim wrote: the record it resumed from and the run's first record."""

    record: Record[Any] | None
    snapshot: Any
    seq: int
    generation: int


class _SinkFirst(Exception):  # noqa: N818 - a signal between two of our functions, not an error
    """The record has outputs to check against the sink, or effects to settle (charges made
    or not): leave the atomic step and find out."""

    def __init__(self, current: bytes) -> None:
        super().__init__()
        self.current = current


async def take_over(writer: Writer, fresh: Any, deadline: float) -> Taken:
    """One attempt at claiming *writer*'s key; `Conflict` asks the caller for another."""
    try:
        return await _claim(writer, fresh, deadline, outbox=None, seen=None)
    except _SinkFirst as first:
        envelope = parse(first.current, writer.key, writer.store)
        for name in fields():
            if name in envelope:
                await writer.effects_of(name).resume(envelope[name])
        commit, field = writer.commit, envelope.get("outbox")
        try:
            outbox = None if commit is None else await commit.resume(field, deadline)
        except ResumableError:
            # The sink holds more or other items than the record read: the run that owns the
            # key may have saved and delivered since. Only if the record is still the one
            # read does the sink disagree with it.
            if await writer.load() != first.current:
                raise Conflict from None
            raise
        return await _claim(writer, fresh, deadline, outbox=outbox, seen=first.current)


async def _claim(
    writer: Writer,
    fresh: Any,
    deadline: float,
    *,
    outbox: tuple[int, tuple[str, ...]] | None,
    seen: bytes | None,
) -> Taken:
    taken: list[Taken] = []
    codec, commit = writer.codec, writer.commit

    def claim(current: bytes | None) -> bytes:
        """Make the record that takes the key over from what the key holds now."""
        taken.clear()
        if seen is not None and current != seen:
            raise Conflict  # the sink was read for another record: read it again
        field = outbox
        if current is None:
            record, snapshot, seq, generation = None, fresh, 0, 0
        else:
            envelope = parse(current, writer.key, writer.store)
            if seen is None and (
                any(name in envelope for name in fields())
                or (commit is not None and ("outbox" in envelope or commit.active))
            ):
                raise _SinkFirst(current)
            record = codec.decode(current)
            snapshot = Raw(codec.raw(record.cursor, "resumed"))
            seq, generation = record.seq, envelope.get("generation", 0)
        taken.append(Taken(record, snapshot, seq + 1, generation + 1))
        return codec.encode(
            snapshot,
            status="running",
            seq=seq + 1,
            owner=writer.owner,
            generation=generation + 1,
            outbox=field,
            effects=writer.effect_fields(),
        )

    try:
        await _update(writer, claim)
    except (KeptRecordError, _SinkFirst, Conflict):
        raise
    except (CorruptStateError, CursorTypeError) as exc:
        if not writer.quarantine:
            raise
        data = await writer.load()
        if data is not None:
            await _quarantine(writer, data, exc, deadline)
        raise Conflict from exc  # claim again, now from a fresh start
    return taken[0]


async def _update(writer: Writer, change: Change) -> None:
    """Read, change and write the key's record in one atomic step where the store can."""
    update: Callable[[str, Change], Awaitable[None]] | None = getattr(writer.store, "update", None)
    if update is not None:
        await update(writer.key, change)
        return
    current = await writer.load()
    data = change(current)

    def unchanged(now: bytes | None) -> None:
        if now != current:
            raise Conflict

    await writer.store.save(writer.key, data, guard=unchanged)


async def _quarantine(writer: Writer, data: bytes, exc: Exception, deadline: float) -> None:
    key, store = writer.key, writer.store
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = f".corrupt-{stamp}"
    aside = key[: max_key_length(store) - len(suffix)] + suffix
    await retrying(
        lambda: store.save(aside, data),
        deadline=deadline,
        describe=lambda: f"Moving the record of job {key!r} aside in {store!r}",
    )
    await store.delete(key)
    log.warning(
        "job %r: the stored record was unusable (%s); it was moved to key %r in %r, "
        "and the job starts fresh",
        key,
        exc,
        aside,
        store,
    )
