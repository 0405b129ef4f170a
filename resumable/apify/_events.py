"""`ApifyEvents`: a job saves, stops and aborts on the Apify platform's events.

Every job listens with listeners of its own (``EventManager.on``/``off``). The pause that
must happen the moment ``migrating`` is emitted, before any listener's task runs, comes from
one hook per event manager: the hook pauses every job listening on that manager, and is put
in with the first of them and taken out with the last. The registry is keyed weakly by the
manager and holds only the jobs that listen now, so finished jobs can be collected, and
overlapping jobs never stack hooks.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from apify import Actor
from crawlee.events import Event, EventManager, EventMigratingData, EventPersistStateData

from resumable.apify._sdk import actor_is_running, hook_emit

if TYPE_CHECKING:
    from resumable._controls import Controls
    from resumable._triggers import Detach

__all__ = ["ApifyEvents", "listening"]

_aborts: set[asyncio.Task[None]] = set()  # aborts under way (the loop keeps weak references)


class ApifyEvents:
    """Saves, stops and aborts a job on the Apify platform's events, through ``Actor.on``.

    - ``migrating``: persist the latest cursor at once, retrying a failing store only within
      the event's ``timeRemainingSecs`` minus *safety_margin*, then stop taking new work and
      wait for the platform to stop the process. ``Actor.reboot()`` fires the same listener,
      so a reboot is a checkpoint too.
    - ``persistState``: ask for a save of the latest cursor (coalesced with other saves); the
      copy the SDK emits right after ``migrating`` (``isMigrating``) is left to the
      migration.
    - ``aborting``: persist, close the generator and end the run ``"aborted"``.

    Each job gets its own listeners, removed when it ends, so jobs running side by side in
    one Actor do not interfere, however many come and go.

    Args:
        safety_margin: Seconds kept back from the migration's time budget.
        fallback_budget: The budget when the event does not say how much time is left (as
            from ``Actor.reboot()``, which waits 5 s for its listeners).
        event_manager: Listen here instead of on the running Actor's event manager (for
            Crawlee programs without an Actor, and for tests).
    """

    loop_bound: ClassVar[bool] = True
    """The events arrive on the Actor's event loop: a plain generator's job refuses them."""

    drives_periodic_saves: ClassVar[bool] = True
    """``persistState`` events drive the periodic saves: the engine runs no timer of its own."""

    def __init__(
        self,
        *,
        safety_margin: float = 2.0,
        fallback_budget: float = 4.0,
        event_manager: EventManager | None = None,
    ) -> None:
        self.safety_margin = safety_margin
        self.fallback_budget = fallback_budget
        self.event_manager = event_manager

    def __repr__(self) -> str:
        return (
            f"ApifyEvents(safety_margin={self.safety_margin}, "
            f"fallback_budget={self.fallback_budget})"
        )

    def budget(self, time_remaining: timedelta | None) -> float:
        """Return the seconds a migration save may take when *time_remaining* is left."""
        if time_remaining is None:
            return self.fallback_budget
        remaining = time_remaining.total_seconds()
        return max(remaining - self.safety_margin, remaining / 2, 0.5)

    def attach(self, controls: Controls) -> Detach:
        """Listen to the platform's events for a job until the returned callable is called."""

        async def on_migrating(data: EventMigratingData) -> None:
            await controls.migrate(self.budget(data.time_remaining))

        async def on_persist_state(data: EventPersistStateData) -> None:
            if not data.is_migrating:
                controls.request_save()

        async def on_aborting() -> None:
            # The abort waits for the work to leave (its grace). A listener waiting with it
            # would hold up whoever waits for the manager's listeners to finish, and a
            # crawler's run does so on its way out, inside that very work.
            task = asyncio.ensure_future(
                controls.abort("the platform is aborting the run (Apify `aborting` event)")
            )
            _aborts.add(task)
            task.add_done_callback(_aborts.discard)

        listeners: list[tuple[Event, Callable[..., Any]]] = [
            (Event.MIGRATING, on_migrating),
            (Event.PERSIST_STATE, on_persist_state),
            (Event.ABORTING, on_aborting),
        ]
        manager = self.event_manager
        if manager is None:
            if not actor_is_running():
                raise RuntimeError(
                    f"ApifyEvents for job {controls.key!r} listens to the Actor's events, but no "
                    "Actor is running: start the job inside `async with Actor:`, or pass "
                    "ApifyEvents(event_manager=...)."
                )
            manager = Actor.event_manager
        for event, listener in listeners:
            manager.on(event=event, listener=listener)
        stop_pausing = listening(manager, controls, self)

        def detach() -> None:
            stop_pausing()
            for event, listener in listeners:
                manager.off(event=event, listener=listener)

        return detach


class _Listening:
    """The jobs that listen on one event manager, and the one hook that pauses them."""

    __slots__ = ("controls", "unhook")

    def __init__(self) -> None:
        self.controls: list[tuple[Controls, ApifyEvents]] = []
        self.unhook: Callable[[], bool] | None = None

    def before_emit(self, event: Event, data: Any) -> None:
        if event == Event.MIGRATING:
            remaining = getattr(data, "time_remaining", None)
            for controls, events in list(self.controls):
                controls.pause(events.budget(remaining))


_registry: weakref.WeakKeyDictionary[EventManager, _Listening] = weakref.WeakKeyDictionary()


def listening(manager: EventManager, controls: Controls, events: ApifyEvents) -> Detach:
    """Pause *controls* the moment *manager* emits ``migrating`` (with the migration's budget
    as *events* reckons it), until the returned callable.

    The manager runs each listener in a task of its own, so the job's task, already
    scheduled, would start one more item before ``on_migrating`` could stop it; the hook
    pauses it synchronously, and the listener then saves.
    """
    entry = _registry.get(manager)
    if entry is None:
        entry = _registry[manager] = _Listening()
    if entry.unhook is None:
        entry.unhook = hook_emit(manager, entry.before_emit)
    entry.controls.append((controls, events))

    def stop() -> None:
        for i, (listener, _) in enumerate(entry.controls):
            if listener is controls:
                del entry.controls[i]
                break
        # Something that wrapped emit on top of the hook keeps it, as a pass-through that
        # the next job on this manager reuses.
        if not entry.controls and entry.unhook is not None and entry.unhook():
            entry.unhook = None

    return stop
