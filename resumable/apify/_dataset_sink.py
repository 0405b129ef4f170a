"""`DatasetSink`: outputs delivered to a Crawlee/Apify dataset, the Actor's default one unless told.

Importing this module does not import the Apify SDK: it is imported when the sink is first
used. What the guarantee rests on: after a crash the engine lists the dataset's items from
the committed offset (never its ``itemCount``, which lags pushes on the platform) and pushes
only the missing part. A dataset cannot refuse a push atomically, so two runs of one key
alive at once are kept apart by the record's fencing, not by the dataset.

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

    def __repr__(self) -> str:
        if self._name is not None:
            return f"DatasetSink(name={self._name!r})"
        if self._dataset is not None:
            return f"DatasetSink({self._dataset!r})"
        return "DatasetSink()"

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
            ResumableError: An item is not a JSON object (a dataset holds objects only).
        """
        for item in items:
            if not isinstance(item, Mapping):
                raise ResumableError(
                    f"{self!r} holds JSON objects only, and an output is {item!r}: push dicts "
                    "(or attrs classes and dataclasses) into the outbox of a job that delivers "
                    "to a dataset."
                )
        from resumable.apify._sdk import mend_local_count  # noqa: PLC0415 - loads the SDK

        dataset = await self._opened()
        await mend_local_count(dataset, start)
        await dataset.push_data(list(items))
