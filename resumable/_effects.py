"""Side effects committed with a cursor and made once the record holding them has landed.

The outbox (`resumable._commit`) is one kind; this module is the seam for the others, which
live with the platform they act on: a pay-per-event charge (`resumable.apify.charge`) asked
for while a run works towards its next cursor belongs to that cursor. The record written for
it (or any later one) holds it under its field (``"charges"``), and once that record has
landed the charge is made. A restart takes over what the record it resumes from holds.

The engine knows an effect only through `Effects` and the field name. The module of a
platform registers what makes the object for its field (`register`) when it is imported: the
engine imports nothing of a platform's SDK, and a record holding a field nothing registered is
refused with a sentence, never dropped.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

from resumable._errors import ResumableError

__all__ = ["Effects", "Host", "host", "make", "register"]


class Effects(Protocol):
    """One kind of side effect of one run (pay-per-event charges)."""

    def take(self) -> None:
        """Bind what was asked since the last cursor to the cursor just advanced."""

    def field(self) -> Any:
        """What a record written now holds (JSON; falsy when nothing is pending)."""

    def landed(self, field: Any) -> None:
        """A record holding *field* landed: what it holds may be made now."""

    async def deliver(self, deadline: float) -> None:
        """Make what landed records hold and was not made yet, before *deadline*."""

    async def resume(self, field: Any) -> None:
        """Take over what the record a run resumes from holds (settled against the world)."""


class Host(Protocol):
    """What a run offers the code that asks for effects inside its work."""

    def effects(self, name: str) -> Effects | None:
        """The run's effects of kind *name*, made on first use; the next cursor takes them.

        ``None`` once the run has ended: nothing would commit them.
        """


# A weak reference: a run left in a context (runs of one task may end in any order) must
# not be kept alive by it.
_running: ContextVar[weakref.ref[Host] | None] = ContextVar("resumable_run", default=None)

_MAKERS: dict[str, Callable[[str, str], Effects]] = {}
"""Per record field: what makes its `Effects` from ``(key, owner)`` (see `register`)."""

_KNOWN = {"charges": "resumable.apify"}
"""The fields this package writes, and the module that registers each."""


def host() -> Host | None:
    """The run entered last in this task (it may have ended since: see `Host.effects`)."""
    ref = _running.get()
    return None if ref is None else ref()


def enter(run: Host) -> Callable[[], None]:
    """Make *run* the host of the effects asked for in this task; return what undoes it.

    Undoing puts back the run entered before, unless another was entered since.
    """
    ref = weakref.ref(run)
    token = _running.set(ref)

    def leave() -> None:
        if _running.get() is not ref:
            return
        try:
            _running.reset(token)
        except ValueError:  # left in another context (a watched run closed by the collector)
            _running.set(None)

    return leave


def register(name: str, maker: Callable[[str, str], Effects]) -> None:
    """Have records' field *name* made into `Effects` by ``maker(key, owner)``."""
    _MAKERS[name] = maker


def fields() -> tuple[str, ...]:
    """The record fields that hold effects."""
    return tuple(_KNOWN)


def make(name: str, key: str, owner: str) -> Effects:
    """Make the `Effects` of record field *name* for one run of *key*.

    Raises:
        ResumableError: Nothing in this process registered the field (its module was not
            imported), so what the record holds under it could not be taken over.
    """
    maker = _MAKERS.get(name)
    if maker is None:
        raise ResumableError(
            f"The record of job {key!r} holds {name!r} still to be made, and nothing in this "
            f"process makes them: `import {_KNOWN.get(name, name)}` in the job's program "
            "(the job that wrote them used it), then run it again."
        )
    return maker(key, owner)
