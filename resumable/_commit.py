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

An append whose outcome is unknown (it raised, timed out or was cut off after the sink may
have stored all, part or none of it: a lost reply) is never repeated blindly: before the
next append the sink is read back in the same way, and only what is missing is appended.
Deliveries go one at a time, apart from the record writes, so that a stop never waits for
one: a record written while a delivery is in flight still holds that delivery's items as
pending, and what the delivery landed meanwhile is taken off when the record has landed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import attrs

from resumable._errors import ResumableError, SinkError, StaleWriterError
from resumable._outbox import Outbox, decode_json, encode_json
from resumable._retry import retrying
from resumable._sink import Sink, json_appender

T = TypeVar("T")

log = logging.getLogger("resumable")

_ATTEMPTS = 3  # appends that find the sink moved under them before the run gives up


class _Moved(Exception):  # noqa: N818 - a signal between two of our functions, not an error
    """The sink refused an append at our position: read it back, then append what is missing."""


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
        self._unsure = False  # an append's outcome is unknown: the sink may hold part of it
        self._delivering = asyncio.Lock()  # one delivery at a time
        self._courier: asyncio.Task[None] | None = None  # a delivery after a stop's save

    @property
    def sink(self) -> Sink:
        """The sink, made on first use."""
        if self._sink is None:
            self._sink = self._make_sink()
        return self._sink

    @property
    def pending(self) -> int:
        """How many items of a landed record the sink may not hold yet."""
        return len(self._pending)

    # -- resuming ---------------------------------------------------------------------

    async def resume(self, field: object, deadline: float) -> tuple[int, tuple[str, ...]] | None:
        """Take over the outbox state of the record a run resumes from (``None``: none).

        Called inside the claim, before its write. Reads the sink: what it holds of the
        pending batch no longer is pending.

        Returns:
            The ``outbox`` field for the claim's record, or ``None`` while dormant.

        Raises:
            SinkError: The sink could not be read before *deadline*.
            ResumableError: The sink holds fewer or more items than the record accounts for.
        """
        if field is None:
            if not self.active:
                return None
            self._delivered, self._pending = await self._count(deadline), ()
        else:
            self.active = True
            self._delivered, self._pending = parse_field(field)
            self._settle(await self._on_sink(self._present, deadline, self._reading))
        self._recorded = self._delivered
        return self._delivered, self._pending

    async def ready(self, deadline: float) -> None:
        """Learn where the sink stands when the outbox came into use after the claim.

        Raises:
            SinkError: The sink could not be counted before *deadline*.
        """
        if self.active and self._delivered is None:
            self._delivered = await self._count(deadline)

    async def _count(self, deadline: float) -> int:
        return await self._on_sink(
            self.sink.count,
            deadline,
            lambda: f"Counting the items of {self.sink!r} for job {self.key!r}",
            advice="The sink failed, not the store; check that the sink is reachable.",
        )

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
        # A delivery may have gone on while the record was written: what it appended of the
        # draft's pending items (the first ones, in order) is no longer pending.
        self._pending = draft.pending[(self._delivered or 0) - draft.delivered :]
        self._recorded = draft.delivered
        self._count_undelivered()

    async def deliver(self, deadline: float) -> None:
        """Append the pending items to the sink, each exactly once; one delivery at a time.

        Items that records land with meanwhile are delivered too, until none is pending.

        Raises:
            SinkError: The sink still failed at *deadline*, or an earlier delivery still
                held it; the items stay pending.
            ResumableError: Something else wrote the sink.
        """
        if not self._pending:
            return
        try:
            async with asyncio.timeout_at(deadline):
                await self._delivering.acquire()
        except TimeoutError:
            raise SinkError(
                f"Delivering {len(self._pending)} output(s) of job {self.key!r} to "
                f"{self.sink!r} did not start before the deadline: an earlier delivery is "
                f"still waiting for the sink. {self._advice()}"
            ) from None
        refusals = 0

        async def attempt() -> None:
            nonlocal refusals
            try:
                await self._append()
            except _Moved:
                refusals += 1
                if refusals >= _ATTEMPTS:
                    raise self._foreign("keeps changing under the delivery") from None
                raise

        try:
            while self._pending:
                await self._on_sink(
                    attempt,
                    deadline,
                    lambda: (
                        f"Delivering {len(self._pending)} output(s) of job {self.key!r} to "
                        f"{self.sink!r}"
                    ),
                )
        finally:
            self._delivering.release()

    def deliver_later(self, timeout: float, report: Callable[[Exception], object]) -> None:
        """Deliver the pending items in a task of their own, within *timeout* seconds.

        A stop's save returns once its record has landed; this delivers after it. A failure
        goes to *report*, as the routine saves report theirs.
        """
        if not self._pending or (self._courier is not None and not self._courier.done()):
            return

        async def deliver() -> None:
            try:
                await self.deliver(asyncio.get_running_loop().time() + timeout)
            except Exception as exc:  # noqa: BLE001 - *report* decides what a failure means
                report(exc)

        self._courier = asyncio.create_task(deliver(), name=f"resumable-delivery:{self.key}")

    async def stop(self) -> None:
        """Abandon the delivery in flight: the next run reads the sink back and settles it."""
        task, self._courier = self._courier, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _append(self) -> None:
        """One attempt at a delivery: settle an unknown outcome first, then append the rest."""
        if self._unsure:  # an append of ours may have landed, wholly or in part
            self._settle(await self._present(), ours=True)
            if not self._pending:
                return
        start, texts = self._delivered or 0, self._pending
        self._unsure = True
        try:
            append_json = json_appender(self.sink)
            if append_json is not None:
                await append_json(texts, start)
            else:
                await self.sink.append(decode_json(texts), start)
        except StaleWriterError as exc:
            raise _Moved(f"the sink refused the append at position {start}: {exc}") from exc
        self._settle(len(texts), ours=True)

    def _settle(self, count: int, *, ours: bool = False) -> None:
        """*count* pending items are in the sink now."""
        self._delivered = (self._delivered or 0) + count
        self._pending = self._pending[count:]
        if ours:
            self.outputs += count
        self._unsure = False
        self._count_undelivered()

    def _count_undelivered(self) -> None:
        self.outbox.undelivered(len(self._pending), sum(map(len, self._pending)))

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

    async def _on_sink(
        self,
        operation: Callable[[], Awaitable[T]],
        deadline: float,
        describe: Callable[[], str],
        *,
        advice: str | None = None,
    ) -> T:
        """Run a sink operation, retried until *deadline*; its failure is the sink's."""
        return await retrying(
            operation,
            deadline=deadline,
            describe=describe,
            error=SinkError,
            advice=self._advice() if advice is None else advice,
        )

    def _reading(self) -> str:
        return f"Reading back the outputs of job {self.key!r} from {self.sink!r}"

    def _advice(self) -> str:
        return (
            f"The sink failed, not the store: the record in {self.store!r} holds these "
            "outputs as pending, and the next save (or the next run of the key) delivers "
            "them. Check that the sink is reachable and takes them."
        )

    def _foreign(self, what: str) -> ResumableError:
        return ResumableError(
            f"The sink {self.sink!r} of job {self.key!r} {what} that the record in "
            f"{self.store!r} accounts for ({self._delivered} delivered, {len(self._pending)} "
            "pending): something else wrote it. Nothing more was written to it. Give the job "
            "a sink of its own, restore the sink, or reset the job's key to start over."
        )


def parse_field(field: object) -> tuple[int, tuple[str, ...]]:
    """Read a record's ``outbox`` field (checked by the codec) back into JSON texts."""
    assert isinstance(field, Mapping)
    return field["delivered"], tuple(encode_json(item) for item in field["pending"])
