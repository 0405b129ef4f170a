"""`charge`: a pay-per-event charge made exactly once, committed with the work it pays for.

Inside a request handler of a crawler run by `resumable.crawlee.exactly_once`, `charge` only
asks: the charge is written into the run's journal with the request's results (one group
commit), and made after that write has landed, with an idempotency key derived from the job's
key, the request and the event. Inside the work of a `@resumable` job it is asked for the
job's next cursor (`JobCharges`, the run's ``"charges"`` effects: `resumable._effects`), and
made once a record holding that cursor has landed. Elsewhere it is ``Actor.charge``.

What a record holds, per event with charges still to make: ``{"charged": C, "pending": [[id,
n], ...]}``: the run had charged *C* of the event when the oldest pending charge was
committed, and the pending ones follow, in commit order. Each one made adds what the SDK
charged to *C* and leaves *pending*. A restart settles them from the run's own count *N* of
the event (the platform's, or locally the SDK's charging log): *N* - *C* of them were made
before the restart and are dropped, the rest are made. Idempotency keys cover a reply lost
within a run (the SDK and the platform remember a key for three minutes); the counts cover a
restart however late. The counts are right only while nothing else charges the same event in
the run: charge it through `charge` alone.

The budget: a charge is granted against the run's maximum total charge as the SDK grants it,
counting also what was committed and not yet made and what requests still running have been
granted, so the charges made later never pass it. `ChargeResult` says what was granted, as
``Actor.charge`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from apify import Actor

from resumable._effects import host, register
from resumable._errors import ResumableError, SinkError
from resumable._retry import retrying
from resumable.apify._sdk import ChargeResult, actor_is_running, event_price, local_charged_counts

__all__ = ["Asked", "JobCharges", "Ledger", "charge"]

log = logging.getLogger("resumable")

_asking: ContextVar[Asked | None] = ContextVar("resumable_charges", default=None)


class Asked:
    """The charges one piece of work (a request's handler) was granted, not yet committed."""

    __slots__ = ("counts", "ledger")

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.counts: dict[str, int] = {}


async def charge(event_name: str, count: int = 1) -> ChargeResult:
    """Charge *count* pay-per-event events of *event_name*, exactly once.

    Inside a handler of a crawler run by `resumable.crawlee.exactly_once`, the charge is
    committed with the request's results and made once they are committed; a request
    handled again after a crash or a migration is never charged twice. Inside the work of a
    `@resumable` job (or a `job()` block) it is committed with the next cursor, and made
    once a record holding that cursor has landed: work done again after a restart (what came
    after the last persisted cursor) is charged once, when it is done again. Elsewhere this
    is ``Actor.charge``.

    Returns:
        What was granted within the run's maximum total charge: ``charged_count`` may be
        lower than *count*, as with ``Actor.charge``.

    Raises:
        ValueError: *event_name* is blank or *count* is not a whole number of 0 or more.
    """
    if not isinstance(event_name, str) or not event_name.strip():
        raise ValueError(f"charge() needs an event name, not {event_name!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(
            f"charge({event_name!r}, count={count!r}): count must be a whole number >= 0"
        )
    asked = _asking.get()
    run = host() if asked is None else None
    if run is not None and actor_is_running() and _pay_per_event():
        charges = run.effects("charges")
        if charges is not None:
            assert isinstance(charges, JobCharges)
            await charges.ready()
            asked = charges.asked
    if asked is None or not _pay_per_event():
        return await Actor.charge(event_name, count=count)
    return asked.ledger.grant(asked, event_name, count)


def _pay_per_event() -> bool:
    return bool(Actor.get_charging_manager().get_pricing_info().is_pay_per_event)


class _Event:
    __slots__ = ("charged", "landed", "pending")

    def __init__(self, charged: int) -> None:
        self.charged = charged
        self.pending: list[tuple[str, int]] = []
        self.landed: set[str] = set()  # the pending charges that a landed record holds


class Ledger:
    """The charges of one job: granted, committed, made, and settled after a restart.

    Args:
        key: The job's key (part of every idempotency key).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.made = 0
        self._events: dict[str, _Event] = {}
        self._running: list[Asked] = []
        self._base: dict[str, int] = {}  # locally: what the charging log held before this process
        self._delivering = asyncio.Lock()

    # -- granting ---------------------------------------------------------------------

    @contextlib.contextmanager
    def asking(self) -> Iterator[Asked]:
        """Let `charge` ask this ledger within the block; what it grants is the block's `Asked`.

        What a block that raised was granted is given back.
        """
        asked = self.ask()
        token = _asking.set(asked)
        try:
            yield asked
        except BaseException:
            self._drop(asked)
            raise
        finally:
            _asking.reset(token)

    def ask(self) -> Asked:
        """A new piece of work that asks for charges until `take` commits them."""
        asked = Asked(self)
        self._running.append(asked)
        return asked

    def _drop(self, asked: Asked) -> None:
        if asked in self._running:
            self._running.remove(asked)

    def grant(self, asked: Asked, event_name: str, count: int) -> ChargeResult:
        """Grant what the run's budget allows of *count* events, to be committed with *asked*."""
        manager = Actor.get_charging_manager()
        prices = manager.get_pricing_info().per_event_prices
        limit = Decimal(manager.get_max_total_charge_usd())
        left = limit - Decimal(manager.calculate_total_charged_amount()) - self._owed(manager)
        price = event_price(manager, event_name)
        granted = min(count, _within(left, price, count))
        if granted:
            asked.counts[event_name] = asked.counts.get(event_name, 0) + granted
        left -= granted * price
        return ChargeResult(
            event_charge_limit_reached=_within(left, price, 1) == 0,
            charged_count=granted,
            chargeable_within_limit={
                name: None if not p or not left.is_finite() else _within(left, Decimal(p), 0)
                for name, p in prices.items()
            },
        )

    def _owed(self, manager: Any) -> Decimal:
        """What was granted and not yet made, in dollars."""
        owed = Decimal(0)
        for name, event in self._events.items():
            owed += sum(n for _, n in event.pending) * event_price(manager, name)
        for asked in self._running:
            for name, n in asked.counts.items():
                owed += n * event_price(manager, name)
        return owed

    # -- committing -------------------------------------------------------------------

    def take(self, asked: Asked, ident: str) -> None:
        """*asked* is committed in the next record, as the charges of *ident*."""
        self._drop(asked)
        for name, n in asked.counts.items():
            event = self._events.get(name)
            if event is None or not event.pending:
                event = self._events[name] = _Event(self._run_count(name))
            event.pending.append((ident, n))

    def field(self) -> dict[str, Any]:
        """The record's charges: per event with charges to make, the count and the pending."""
        return {
            name: {"charged": event.charged, "pending": [[i, n] for i, n in event.pending]}
            for name, event in self._events.items()
            if event.pending
        }

    def landed(self, field: Mapping[str, Any]) -> None:
        """A record holding *field* (a `field` of this ledger) landed: its charges may be made."""
        for name, raw in field.items():
            event = self._events.get(name)
            if event is not None:
                event.landed.update(str(ident) for ident, _ in raw["pending"])

    async def deliver(self, deadline: float) -> None:
        """Make the pending charges that a landed record holds, oldest first, each with its
        idempotency key.

        Raises:
            StoreError: The SDK still failed at *deadline*; the rest stays pending.
        """
        async with self._delivering:  # one at a time: two would make the same charge
            await self._deliver(deadline)

    async def _deliver(self, deadline: float) -> None:
        for name, event in list(self._events.items()):
            while event.pending and event.pending[0][0] in event.landed:
                ident, n = event.pending[0]
                result = await self._make(name, n, self.idempotency_key(ident, name), deadline)
                if result.charged_count < n:
                    log.info(
                        "job %r: %d of %d %r event(s) charged: the run's maximum total charge "
                        "is reached",
                        self.key,
                        result.charged_count,
                        n,
                        name,
                    )
                event.charged += result.charged_count
                self.made += result.charged_count
                event.pending.pop(0)
                event.landed.discard(ident)

    async def _make(self, name: str, count: int, key: str, deadline: float) -> ChargeResult:
        return await retrying(
            lambda: Actor.charge(name, count=count, idempotency_key=key),
            deadline=deadline,
            describe=lambda: f"Charging event {name!r} of job {self.key!r} (Actor.charge)",
            error=SinkError,
            advice="The charge stays pending in the record; the next save tries again.",
        )

    def idempotency_key(self, ident: str, event_name: str) -> str:
        """The key a charge is made with: the same for the same charge in every run."""
        digest = hashlib.sha256(f"{self.key}\0{ident}\0{event_name}".encode()).hexdigest()
        return f"resumable-{digest[:40]}"

    # -- resuming ---------------------------------------------------------------------

    async def resume(self, field: Mapping[str, Any] | None) -> None:
        """Take over the charges a record left pending, minus those the run made already.

        Raises:
            ResumableError: The record holds charges to make, and no Actor runs to make them.
        """
        if not actor_is_running():
            if field:
                raise ResumableError(
                    f"Job {self.key!r} has pay-per-event charges to make ({sorted(field)}), but "
                    "no Actor is running: run it inside `async with Actor:`."
                )
            return
        manager = Actor.get_charging_manager()
        if not Actor.is_at_home() and manager.get_pricing_info().is_pay_per_event:
            logged = await local_charged_counts()
            self._base = {
                name: count - manager.get_charged_event_count(name)
                for name, count in logged.items()
            }
        for name, raw in (field or {}).items():
            event = self._events[name] = _Event(int(raw["charged"]))
            event.pending = [(str(ident), int(n)) for ident, n in raw["pending"]]
            self._settle(name, event)
            event.landed = {ident for ident, _ in event.pending}  # the record holds them

    def _settle(self, name: str, event: _Event) -> None:
        made = self._run_count(name) - event.charged
        settled = 0
        while event.pending and made > 0:
            _, n = event.pending.pop(0)
            took = min(n, made)
            event.charged += took
            made -= took
            settled += 1
        if settled:
            log.info(
                "job %r: %d committed charge(s) of %r had been made before the restart; not "
                "charging them again",
                self.key,
                settled,
                name,
            )
        if made > 0:
            log.warning(
                "job %r: the run charged %d more %r event(s) than this job accounts for: "
                "something else charges that event; charge it through resumable.apify.charge "
                "alone",
                self.key,
                made,
                name,
            )
            event.charged += made

    def _run_count(self, name: str) -> int:
        manager = Actor.get_charging_manager()
        return self._base.get(name, 0) + int(manager.get_charged_event_count(name))


def _within(left: Decimal, price: Decimal, default: int) -> int:
    """How many events at *price* fit in *left* dollars (*default* when there is no limit)."""
    if not price or not left.is_finite():
        return default
    return max(0, math.floor(left / price))


class JobCharges:
    """The charges of one run of a `@resumable` job (or `job()` block): its `Effects`.

    What the work asks for until its next cursor is granted on `asked`; the cursor takes it
    (`take`), and every record written from then on holds it until it is made.

    Args:
        key: The job's key.
        owner: The run's owner id: with a count, it names each charge (its idempotency key).
    """

    def __init__(self, key: str, owner: str) -> None:
        self.ledger = Ledger(key)
        self.owner = owner
        self.asked = self.ledger.ask()
        self._taken = 0
        self._counted = False  # the run's counts are known (`Ledger.resume`)

    async def ready(self) -> None:
        """Learn the run's counts before the first charge, as a resume does."""
        if not self._counted:
            await self.resume(None)

    def take(self) -> None:
        """The cursor just advanced commits what was asked for since the one before."""
        if self.asked.counts:
            self._taken += 1
            self.ledger.take(self.asked, f"{self.owner}:{self._taken}")
            self.asked = self.ledger.ask()

    def field(self) -> dict[str, Any]:
        """The record's ``charges`` field (empty when none is pending)."""
        return self.ledger.field()

    def landed(self, field: Any) -> None:
        """A record holding *field* landed."""
        self.ledger.landed(field)

    async def deliver(self, deadline: float) -> None:
        """Make the charges that landed records hold (see `Ledger.deliver`)."""
        await self.ledger.deliver(deadline)

    async def resume(self, field: Any) -> None:
        """Take over and settle the charges of the record resumed from (see `Ledger.resume`)."""
        await self.ledger.resume(field)
        self._counted = True


register("charges", JobCharges)
