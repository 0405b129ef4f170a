"""The commit protocol of the outbox: outputs persisted with their cursor, then delivered.

The record carries, beside the cursor, ``"outbox": {"delivered": D, "pending": [...]}``: the
sink held *D* items of this job when the record was written, and *pending* are the items that
belong to the record's cursor (or an earlier one) and must follow them, in order. A save:

1. writes the record: the latest cursor, *D*, and the pending items plus those pushed before
   the latest cursor (a fenced-out run's write fails here, so it delivers nothing);
2. once the write has landed, appends the pending items to the sink at position *D*;
3. the next record says *D* + their number and no longer holds them.

On resume the sink is read from position *D* - 1: it must hold item *D* - 1 and then a prefix
of *pending*; the rest of *pending* is delivered. Anything else means that something else
wrote the sink, and the run stops before writing anything to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from resumable._errors import ResumableError, StaleWriterError
from resumable._outbox import Outbox, decode_json, encode_json
from resumable._retry import retrying
from resumable._sink import Sink

log = logging.getLogger("resumable")

_ATTEMPTS = 3  # deliveries that find the sink moved under them before the run gives up


@attrs.frozen
class Draft:
    """What one record says about the outbox, and how many held items it takes."""

    delivered: int
    pending: tuple[str, ...]
    taken: int

    def field(self) -> tuple[int, tuple[str, ...]]:
        """The record's ``outbox`` field: delivered count and pending JSON texts."""
        return self.delivered, self.pending


class Commit:
    """The engine's side of one run's outbox: what is recorded, what is delivered.

    Dormant until the job uses its outbox (or the record it resumes from has one), so a job
    without outputs never touches a sink and writes records without the field.

    Attributes:
        outbox: What the job pushes into.
        outputs: Items this run delivered to the sink.
        active: Whether the outbox is in use.
    """

    def __init__(
        self, key: str, outbox: Outbox[Any], sink: Callable[[], Sink], *, active: bool
    ) -> None:
        self.key = key
        self.outbox = outbox
        self.outputs = 0
        self.active = active
        self.store: object = None
        self._make_sink = sink
        self._sink: Sink | None = None
        self._delivered: int | None = None
        self._pending: tuple[str, ...] = ()
        self._recorded: int | None = None
        self._unsure = False  # a delivery was interrupted: the sink may hold part of it

    @property
    def sink(self) -> Sink:
        """The sink, made on first use."""
        if self._sink is None:
            self._sink = self._make_sink()
        return self._sink

    # -- resuming ---------------------------------------------------------------------

    async def resume(self, field: object) -> tuple[int, tuple[str, ...]] | None:
        """Take over the outbox state of the record a run resumes from (``None``: none).

        Called inside the claim, before its write. Reads the sink: what it holds of the
        pending batch no longer is pending.

        Returns:
            The ``outbox`` field for the claim's record, or ``None`` while dormant.

        Raises:
            ResumableError: The sink holds fewer or more items than the record accounts for.
        """
        if field is None:
            if not self.active:
                return None
            self._delivered, self._pending = await self.sink.count(), ()
        else:
            self.active = True
            self._delivered, self._pending = _parse(field)
            self._settle(await self._present())
        self._recorded = self._delivered
        return self._delivered, self._pending

    async def ready(self) -> None:
        """Learn where the sink stands when the outbox came into use after the claim."""
        if self.active and self._delivered is None:
            self._delivered = await self.sink.count()

    # -- saving -----------------------------------------------------------------------

    def draft(self, *, everything: bool, take: bool = True) -> Draft | None:
        """What the next record holds; ``None`` while dormant."""
        if not self.active or self._delivered is None:
            return None
        taken = self.outbox.covered(everything=everything) if take else 0
        return Draft(self._delivered, self._pending + tuple(self.outbox.peek(taken)), taken)

    def news(self, draft: Draft | None) -> bool:
        """Whether *draft* says something the latest record does not."""
        return draft is not None and (draft.taken > 0 or draft.delivered != self._recorded)

    def landed(self, draft: Draft | None) -> None:
        """The record of *draft* has been written: its items are the sink's to receive."""
        if draft is None:
            return
        self.outbox.drop(draft.taken)
        self._pending = draft.pending
        self._recorded = draft.delivered

    async def deliver(self, deadline: float) -> None:
        """Append the pending items to the sink, each exactly once.

        Raises:
            StoreError: The sink still failed at *deadline*; the items stay pending.
            ResumableError: Something else wrote the sink.
        """
        for _ in range(_ATTEMPTS):
            if not self._pending:
                return
            if self._unsure:  # an append of ours was cut short: count what it delivered
                self._settle(
                    ours=True,
                    count=await retrying(
                        self._present,
                        deadline=deadline,
                        describe=lambda: (
                            f"Reading back the outputs of job {self.key!r} from {self.sink!r}"
                        ),
                    ),
                )
                if not self._pending:
                    return
            self._unsure = True
            try:
                count = await self._append(deadline)
            except StaleWriterError:
                continue  # the sink moved: read what it holds and deliver the rest
            self._settle(count, ours=True)
            return
        raise self._foreign("keeps changing under the delivery")

    async def _append(self, deadline: float) -> int:
        start, items = self._delivered or 0, decode_json(self._pending)
        await retrying(
            lambda: self.sink.append(items, start),
            deadline=deadline,
            describe=lambda: (
                f"Delivering {len(items)} output(s) of job {self.key!r} to {self.sink!r}"
            ),
        )
        return len(items)

    def _settle(self, count: int, *, ours: bool = False) -> None:
        """*count* pending items are in the sink now."""
        self._delivered = (self._delivered or 0) + count
        self._pending = self._pending[count:]
        if ours:
            self.outputs += count
        self._unsure = False

    async def _present(self) -> int:
        """How many of the pending items the sink holds, checked item by item."""
        delivered, pending = self._delivered or 0, self._pending
        first = max(delivered - 1, 0)
        got = list(await self.sink.read(first, len(pending) + 1 + (delivered > 0)))
        if delivered > 0:
            if not got:
                raise self._foreign(f"holds fewer than the {delivered} item(s)")
            got = got[1:]
        if len(got) > len(pending):
            raise self._foreign(f"holds more than the {delivered + len(pending)} item(s)")
        if got != decode_json(pending[: len(got)]):
            raise self._foreign(f"holds other items after position {delivered} than the")
        if got:
            log.info(
                "job %r: %d of %d pending output(s) had reached %r already",
                self.key,
                len(got),
                len(pending),
                self.sink,
            )
        return len(got)

    def _foreign(self, what: str) -> ResumableError:
        return ResumableError(
            f"The sink {self.sink!r} of job {self.key!r} {what} that the record in "
            f"{self.store!r} accounts for ({self._delivered} delivered, {len(self._pending)} "
            "pending): something else wrote it. Nothing more was written to it. Give the job "
            "a sink of its own, restore the sink, or reset the job's key to start over."
        )


def _parse(field: object) -> tuple[int, tuple[str, ...]]:
    """Read a record's ``outbox`` field (checked by the codec) back into JSON texts."""
    assert isinstance(field, Mapping)
    return field["delivered"], tuple(encode_json(item) for item in field["pending"])
