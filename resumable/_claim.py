"""Taking a key over: load its record, check it, and make the run its owner.

Atomically with loading it where the store can (its optional ``update``): the claim record
is made from what the key holds at that instant, so a newer run takes over however busy an
older run keeps the key, and never writes back a cursor older than the one it took over.
A record the codec cannot read is moved aside first when the job asks for quarantine.

A record with outputs or other side effects to settle is taken over in two writes. The
first fences the older run out: it makes this run the owner and keeps the record's fields
as they were, so any later claim settles them alike. Then, with nobody else writing
records, the sink is read (what the record holds as pending may have been delivered since)
and the second write records what is settled. Reading the sink before fencing would lose
to an older run busy saving: its every save would ask for another read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from resumable._codec import Codec
from resumable._commit import Commit, parse_field
from resumable._effects import Effects, fields
from resumable._envelope import KeptRecordError, parse
from resumable._errors import CorruptStateError, CursorTypeError, ResumableError
from resumable._record import Record
from resumable._retry import Conflict, retrying
from resumable._snapshot import Raw
from resumable._stores import Change, Store, SupportsOpen, SupportsUpdate, max_key_length
from resumable._timing import Timing


class Writer(Protocol):
    """What a claim needs of the writer (`resumable._writer.Writer`)."""

    key: str
    store: Store
    codec: Codec[Any]
    commit: Commit | None
    owner: str
    quarantine: bool
    timing: Timing

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


@attrs.frozen
class _Fence:
    """The first of two claim writes: the run owns the key, and the record's outputs and
    effects are still to be settled."""

    taken: Taken
    data: bytes  # the record as written
    previous: bytes  # the record it took over
    envelope: Mapping[str, Any]  # the previous record's envelope
    kept: Mapping[str, Any]  # its effects' fields, kept as they were

    def restore(self, current: bytes | None) -> bytes:
        """The record to put back when the run stops before it settled anything."""
        if current != self.data:
            raise Conflict  # a newer run took the key over meanwhile
        return self.previous


async def take_over(writer: Writer, fresh: Any, deadline: float) -> Taken:
    """One attempt at claiming *writer*'s key; `Conflict` asks the caller for another.

    A store that needs opening (`SupportsOpen`) is opened first, so that one that cannot
    be reached fails the start of the run, within the claim's retries.
    """
    if isinstance(writer.store, SupportsOpen):
        await writer.store.open()
    fence = await _claim(writer, fresh, deadline)
    if isinstance(fence, Taken):
        return fence
    try:
        for name, held in fence.kept.items():
            await writer.effects_of(name).resume(held)
        commit = writer.commit
        field = fence.envelope.get("outbox")
        outbox = None if commit is None else await commit.resume(field, deadline)
    except ResumableError:
        # The sink holds more or other items than the record (or cannot be read), or the
        # effects cannot be settled here: the run stops, and the key gets back the record
        # it held, unless a newer run took it over meanwhile.
        await _update(writer, fence.restore)
        raise
    return await _settle(writer, fence, outbox)


async def _claim(writer: Writer, fresh: Any, deadline: float) -> Taken | _Fence:
    made: list[Taken | _Fence] = []
    codec, commit = writer.codec, writer.commit

    def claim(current: bytes | None) -> bytes:
        """Make the record that takes the key over from what the key holds now."""
        made.clear()
        if current is None:
            made.append(Taken(None, fresh, 1, 1))
            return codec.encode(
                fresh,
                status="running",
                seq=1,
                owner=writer.owner,
                generation=1,
                effects=writer.effect_fields(),
            )
        envelope = parse(current, writer.key, writer.store)
        record = codec.decode(current)
        snapshot = Raw(codec.raw(record.cursor, "resumed"))
        taken = Taken(record, snapshot, record.seq + 1, envelope.get("generation", 0) + 1)
        kept = {name: envelope[name] for name in fields() if name in envelope}
        field = envelope.get("outbox")
        unsettled = bool(kept) or (commit is not None and (field is not None or commit.active))
        data = codec.encode(
            snapshot,
            status="running",
            seq=taken.seq,
            owner=writer.owner,
            generation=taken.generation,
            outbox=None if field is None else parse_field(field),
            effects=kept if unsettled else writer.effect_fields(),
        )
        made.append(_Fence(taken, data, current, envelope, kept) if unsettled else taken)
        return data

    try:
        await _update(writer, claim)
    except (KeptRecordError, Conflict):
        raise
    except (CorruptStateError, CursorTypeError) as exc:
        if not writer.quarantine:
            raise
        data = await writer.load()
        if data is not None:
            await _quarantine(writer, data, exc, deadline)
        raise Conflict from exc  # claim again, now from a fresh start
    return made[0]


async def _settle(
    writer: Writer, fence: _Fence, outbox: tuple[int, tuple[str, ...]] | None
) -> Taken:
    """Record what the fenced record's outputs and effects were settled to."""
    fenced = fence.taken
    taken = Taken(fenced.record, fenced.snapshot, fenced.seq + 1, fenced.generation)

    def settled(current: bytes | None) -> bytes:
        if current != fence.data:
            raise Conflict  # a newer run took the key over meanwhile
        return writer.codec.encode(
            taken.snapshot,
            status="running",
            seq=taken.seq,
            owner=writer.owner,
            generation=taken.generation,
            outbox=outbox,
            effects=writer.effect_fields(),
        )

    await _update(writer, settled)
    return taken


async def _update(writer: Writer, change: Change) -> None:
    """Read, change and write the key's record in one atomic step where the store can."""
    if isinstance(writer.store, SupportsUpdate):
        await writer.store.update(writer.key, change)
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
        timing=writer.timing,
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
