"""`DatasetSink`: outputs delivered to a Crawlee/Apify dataset, the Actor's default one unless told.

Importing this module does not import the Apify SDK: it is imported when the sink is first
used. What the guarantee rests on: after a crash, or a push whose outcome is unknown, the
engine lists the dataset's items from the committed offset (never its ``itemCount``, which
lags pushes on the platform) and pushes only the missing part. On the platform each push is
one request that the API client does not repeat by itself, so a lost reply reaches the
engine instead of being stored twice below it. A dataset cannot refuse a push atomically,
so two runs of one key alive at once are kept apart by the record's fencing, not by the
dataset, and a push cut off at its deadline that the API still stores later (after the
engine has read the dataset back) is the one case that can store a batch twice.

On local storage, a kill between Crawlee writing a push's item files and writing their count
leaves the count behind; before each push, the count is moved up to the position the engine
delivers at (the engine has read those items back, so they are the job's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from resumable._errors import ResumableError


class DatasetSink:
    """Delivers outputs to a Crawlee/Apify dataset; every item must be a JSON object.

    Args:
        dataset: An opened ``Dataset``; ``None``: open the Actor's default dataset (or *name*).
        name: The name of a named dataset to open instead of the default one.
    """

    def __init__(self, dataset: Any = None, *, name: str | None = None) -> None:
        if dataset is not None and name is not None:
            raise TypeError("DatasetSink takes a dataset or a name=, not both")
        self._dataset = dataset
        self._name = name
        self._default = dataset is None and name is None
        self._pushing: Any = None  # the dataset as pushes reach it (see `pushing_once`)

    def __repr__(self) -> str:
        """Name the dataset as its user knows it: its name or id, and where it lives."""
        dataset = self._dataset
        if dataset is None:
            if self._name is not None:
                return f"DatasetSink(name={self._name!r})"
            return "DatasetSink(the Actor's default dataset)"
        from resumable.apify._sdk import dataset_location  # noqa: PLC0415 - see `append`

        name, ident = getattr(dataset, "name", None), getattr(dataset, "id", None)
        if not isinstance(name, str) and not isinstance(ident, str):
            return f"DatasetSink({dataset!r})"
        if isinstance(name, str):
            what = f"dataset {name!r}"
        else:
            what = "the Actor's default dataset" if self._default else "an unnamed dataset"
        if isinstance(ident, str) and ident != name:
            what += f" (id {ident!r})"
        where = dataset_location(dataset)
        return f"DatasetSink({what}{', ' + where if where else ''})"

    async def _opened(self) -> Any:
        if self._dataset is None:
            from apify import Actor  # noqa: PLC0415 - the SDK is needed only once it is used

            self._dataset = await Actor.open_dataset(name=self._name)
        return self._dataset

    async def count(self) -> int:
        """Return the dataset's item count (used only when a job first uses the dataset)."""
        metadata = await (await self._opened()).get_metadata()
        return int(metadata.item_count)

    async def read(self, start: int, limit: int) -> list[Any]:
        """List up to *limit* items from position *start* on."""
        page = await (await self._opened()).get_data(offset=start, limit=limit)
        return list(page.items)

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Push *items* in one call.

        Raises:
            ResumableError: An item is not a JSON object (a dataset holds objects only), or
                the run's maximum total charge pays for fewer items than *items* (those it
                pays for are pushed).
        """
        for item in items:
            if not isinstance(item, Mapping):
                raise ResumableError(
                    f"{self!r} holds JSON objects only, and an output is {item!r}: push dicts "
                    "(or attrs classes and dataclasses) into the outbox of a job that delivers "
                    "to a dataset."
                )
        from resumable.apify._sdk import (  # noqa: PLC0415 - the SDK, once it is used
            mend_local_count,
            pushing_once,
            within_charge_limit,
        )

        dataset = await self._opened()
        if self._pushing is None:
            self._pushing = pushing_once(dataset)
        await mend_local_count(dataset, start)
        allowed = within_charge_limit(self._pushing, len(items))
        if allowed:
            await self._pushing.push_data(list(items[:allowed]))
        if allowed < len(items):
            raise ResumableError(
                f"The run's maximum total charge pays for {allowed} more item(s) in {self!r}, "
                f"and {len(items)} were to be pushed: the other {len(items) - allowed} stay "
                "pending in the job's record, with every output after them. Raise the Actor's "
                "maximum cost per run and resurrect the run: it delivers them from there."
            )
