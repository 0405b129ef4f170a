"""The journal of a crawl: what the finished requests did, as one record's cursor.

The journal is the cursor of the run's job (`resumable.job`), so it is claimed, fenced,
retried and saved on stops by the engine like any cursor; `Journal` only says what it holds
and what to do once a version of it has landed. One version (a *proposal*) is made for each
group of requests that finished meanwhile:

``requests``
    The unique keys of the requests committed and not yet marked handled in the queue: a
    request the queue hands out again while it is here is completed from the journal,
    never handled again. A key leaves once the queue has marked the request handled.
``finished``, ``failed``
    How many requests were committed as done and as failed, ever: the crawler's statistics
    start from them, so that ``max_requests_per_crawl`` holds across restarts.
``datasets``
    Per dataset the handlers pushed to (``{"id", "name", "alias"}``): the outbox protocol of
    `resumable._commit`, one `Commit` each: how many items the dataset held when the record
    was written, and the items committed but not yet delivered, in push order.
``values``
    Key-value store changes committed and not yet set, in commit order.
``charges``
    Pay-per-event charges committed and not yet made (`resumable.apify._charges`).

Requests a handler added are added to the queue before the commit: a queue keeps one request
per unique key, so adding again after a crash is harmless and needs no journal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import cattrs

from resumable._commit import Commit, Draft
from resumable._errors import CorruptStateError, CursorTypeError, ResumableError, StoreError
from resumable._outbox import Outbox, decode_json, encode_json
from resumable._timing import Timing
from resumable.apify._charges import Asked, Ledger
from resumable.apify._dataset_sink import DatasetSink

log = logging.getLogger("resumable")

Kind = Literal["finished", "failed", "other"]
Where = tuple[str | None, str | None, str | None]
"""A storage as the handlers name it: (id, name, alias); all ``None`` for the default one."""


@attrs.frozen
class Finished:
    """What one request left to commit: its results, or only how it ended.

    Attributes:
        key: The request's unique key.
        kind: Done (``"finished"``), failed for good (``"failed"``), or neither (skipped).
        items: The items it pushed, per dataset, in push order.
        values: Its key-value store changes, as the journal holds them.
        asked: The charges it was granted.
    """

    key: str
    kind: Kind
    items: tuple[tuple[Where, tuple[Any, ...]], ...] = ()
    values: tuple[dict[str, Any], ...] = ()
    asked: Asked | None = None


def value_change(where: Where, key: str, content: Any, content_type: str | None) -> dict[str, Any]:
    """One key-value store change as the journal holds it (bytes as base64).

    Raises:
        CursorTypeError: The value is neither bytes nor JSON.
    """
    change: dict[str, Any] = {"store": _ref(where), "key": key, "type": content_type}
    if isinstance(content, bytes | bytearray):
        change["base64"] = base64.b64encode(content).decode()
        return change
    try:
        encode_json(content)
    except (TypeError, ValueError) as exc:
        raise CursorTypeError(
            f"A request handler set key {key!r} of a key-value store to {content!r} "
            f"({type(content).__name__}), which an exactly-once crawl cannot commit: {exc}. Set "
            "JSON values or bytes."
        ) from exc
    change["value"] = content
    return change


def ident(key: str) -> str:
    """A short, stable name for the request with unique key *key*."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class _Channel:
    """One dataset's share of the journal: the outbox protocol with that dataset as the sink."""

    def __init__(self, job_key: str, where: Where, sink: DatasetSink, store: object) -> None:
        self.where = where
        self.box: Outbox[Any] = Outbox(cattrs.Converter(), _nothing)
        self.commit = Commit(job_key, self.box, lambda: sink, active=True)
        self.commit.store = store


@attrs.frozen
class Proposal:
    """A version of the journal, made for one group of finished requests."""

    snapshot: dict[str, Any]
    keys: tuple[str, ...]
    finished: int
    failed: int
    values: tuple[dict[str, Any], ...]
    drafts: tuple[tuple[_Channel, Draft], ...]


class Journal:
    """The state of a crawl's journal in this run (see the module's description).

    Args:
        key: The job's key.
        store: The job's store (named in errors).
        datasets: Opens a dataset by (id, name, alias), as the crawler does.
        stores: Opens a key-value store by (id, name, alias), as the crawler does.
        timing: The job's budgets (`resumable._timing`).
    """

    def __init__(
        self, key: str, store: object, datasets: Any, stores: Any, *, timing: Timing
    ) -> None:
        self.key = key
        self.store = store
        self.timing = timing
        self.ledger = Ledger(key)
        self.finished = 0
        self.failed = 0
        self._open_dataset = datasets
        self._open_store = stores
        self._held: dict[str, None] = {}  # an ordered set
        self._channels: dict[Where, _Channel] = {}
        self._values: list[dict[str, Any]] = []

    @property
    def held(self) -> Sequence[str]:
        """The keys of the requests committed and not yet marked handled."""
        return tuple(self._held)

    @property
    def outputs(self) -> int:
        """Items this run delivered to datasets."""
        return sum(channel.commit.outputs for channel in self._channels.values())

    def holds(self, key: str) -> bool:
        """Whether the request with unique key *key* is committed and not yet marked handled."""
        return key in self._held

    def forget(self, keys: Iterable[str]) -> None:
        """The queue has marked these requests handled: the next version leaves them out."""
        for key in keys:
            self._held.pop(key, None)

    # -- resuming ---------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Any], deadline: float) -> None:
        """Take over the journal a record holds, and deliver what it left pending.

        Raises:
            CorruptStateError: The record is not a crawl's journal.
            ResumableError: A dataset holds other items than the journal accounts for.
        """
        try:
            self._held = dict.fromkeys(str(key) for key in state.get("requests", ()))
            self.finished = int(state.get("finished", 0))
            self.failed = int(state.get("failed", 0))
            self._values = [dict(change) for change in state.get("values", ())]
            datasets = [(_where(raw["dataset"]), raw) for raw in state.get("datasets", ())]
            charges = state.get("charges")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptStateError(
                f"The record of key {self.key!r} in {self.store!r} is not the journal of a "
                f"crawl ({type(exc).__name__}: {exc}). Give exactly_once a key of its own, or "
                "reset this one to crawl from the start."
            ) from exc
        for where, raw in datasets:
            channel = await self._channel(where, deadline, fresh=False)
            await channel.commit.resume(
                {"delivered": raw["delivered"], "pending": raw["pending"]}, deadline
            )
        await self.ledger.resume(charges)
        await self.deliver(deadline)

    async def _channel(self, where: Where, deadline: float, *, fresh: bool = True) -> _Channel:
        channel = self._channels.get(where)
        if channel is None:
            dataset = await self._open_dataset(*where)
            channel = self._channels[where] = _Channel(
                self.key, where, DatasetSink(dataset), self.store
            )
            if fresh:
                await channel.commit.ready(deadline)
        return channel

    # -- committing -------------------------------------------------------------------

    async def propose(self, group: Sequence[Finished]) -> Proposal:
        """The next version of the journal: what it holds now, and *group*."""
        deadline = asyncio.get_running_loop().time() + self.timing.save
        for finished in group:
            for where, items in finished.items:
                (await self._channel(where, deadline)).box.extend(items)
            if finished.asked is not None:
                self.ledger.take(finished.asked, ident(finished.key))
        keys = tuple(f.key for f in group if f.key not in self._held)
        drafts: list[tuple[_Channel, Draft]] = []
        for channel in self._channels.values():
            draft = channel.commit.draft(everything=True)
            assert draft is not None  # every channel is active and ready
            drafts.append((channel, draft))
        values = tuple(change for f in group for change in f.values)
        finished_count = self.finished + sum(f.kind == "finished" for f in group)
        failed_count = self.failed + sum(f.kind == "failed" for f in group)
        snapshot = {
            "requests": [*self._held, *keys],
            "finished": finished_count,
            "failed": failed_count,
            "datasets": [
                {
                    "dataset": _ref(channel.where),
                    "delivered": draft.delivered,
                    "pending": decode_json(draft.pending),
                }
                for channel, draft in drafts
            ],
            "values": [*self._values, *values],
            "charges": self.ledger.field(),
        }
        return Proposal(snapshot, keys, finished_count, failed_count, values, tuple(drafts))

    def snapshot(self) -> dict[str, Any]:
        """The journal as it stands, for the run's last record."""
        return {
            "requests": list(self._held),
            "finished": self.finished,
            "failed": self.failed,
            "datasets": [
                {
                    "dataset": _ref(where),
                    "delivered": draft.delivered,
                    "pending": decode_json(draft.pending),
                }
                for where, channel in self._channels.items()
                if (draft := channel.commit.draft(everything=True)) is not None
            ],
            "values": list(self._values),
            "charges": self.ledger.field(),
        }

    def landed(self, proposal: Proposal) -> None:
        """A record holding *proposal* has landed: its requests are committed."""
        self._held.update(dict.fromkeys(proposal.keys))
        self.finished, self.failed = proposal.finished, proposal.failed
        self._values.extend(proposal.values)
        for channel, draft in proposal.drafts:
            channel.commit.landed(draft)
        self.ledger.landed(proposal.snapshot["charges"])

    async def deliver(self, deadline: float) -> None:
        """Deliver what the latest version holds pending: items, values, then charges.

        A destination that keeps failing is logged and tried again with the next group;
        what it did not take stays pending in the journal.

        Raises:
            ResumableError: A dataset holds other items than the journal accounts for.
        """
        for channel in self._channels.values():
            await _attempt(self.key, channel.commit.deliver(deadline))
        if self._values:
            await _attempt(self.key, self._set_values())
        await _attempt(self.key, self.ledger.deliver(deadline))

    async def _set_values(self) -> None:
        while self._values:
            change = self._values[0]
            kvs = await self._open_store(*_where(change["store"]))
            if "base64" in change:
                content: Any = base64.b64decode(change["base64"])
            else:
                content = change["value"]
            await kvs.set_value(change["key"], content, change.get("type"))
            self._values.pop(0)


async def _attempt(key: str, delivery: Any) -> None:
    try:
        await delivery
    except StoreError as exc:
        log.warning("job %r: %s; the next commit tries again", key, exc)
    except ResumableError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing destination is logged, and kept pending
        log.warning("job %r: a delivery failed (%r); the next commit tries again", key, exc)


def _ref(where: Where) -> dict[str, str | None]:
    return {"id": where[0], "name": where[1], "alias": where[2]}


def _where(ref: Mapping[str, Any]) -> Where:
    return (ref.get("id"), ref.get("name"), ref.get("alias"))


def _nothing() -> None:
    pass
