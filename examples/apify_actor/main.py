"""The Actor: process numbered items, push one dataset record each, survive migrations.

The main loop is an async generator that yields a cursor (the first item not done yet)
after every item. Inside ``async with Actor:``, ``@resumable`` keeps that cursor in the
run's default key-value store (record ``items``) and listens to the platform's events: on
``migrating`` it saves the latest cursor at once and takes no new item; when the platform
starts the run again on another server, the loop continues from the saved cursor. Only
items after that cursor can run twice; none is skipped. The records go through the job's
outbox, so each reaches the default dataset exactly once, saved with its cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from apify import Actor

from resumable import Outbox, resumable


async def main() -> None:
    """Run the Actor: read the input, process the items, report how the run ended."""
    async with Actor:
        actor_input = await Actor.get_input() or {}
        items = int(actor_input.get("items", 100))
        delay = int(actor_input.get("delayMillis", 1000)) / 1000

        @resumable(key="items")
        async def process(
            *, cursor: int = 0, out: Outbox[dict[str, int]] = Outbox.GIVEN
        ) -> AsyncIterator[int]:
            for item in range(cursor, items):
                await asyncio.sleep(delay)  # the real work: fetch a page, call an API...
                out.push({"item": item, "square": item * item})  # to the dataset, once
                yield item + 1

        outcome = await process()
        start = (
            "from the start"
            if outcome.resumed_from is None
            else f"from item {outcome.resumed_from}"
        )
        Actor.log.info(
            f"Run {outcome.status} at item {outcome.cursor} of {items}, resumed {start}; "
            f"{outcome.yields} items in this run, {outcome.saves} state writes, "
            f"{outcome.outputs} dataset items."
        )
