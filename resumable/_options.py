"""`JobOptions`: every option of a job, spelled and validated once.

The decorator, `job()`, ``fn.state()`` and the test helpers all take their options from one
frozen `JobOptions`; ``with_options`` is an `evolve`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import EllipsisType, MappingProxyType
from typing import Any, Literal, TypeAlias, TypedDict

import attrs
import cattrs

from resumable._codec import Codec, Upgrade, make_converter
from resumable._errors import InvalidOptionError
from resumable._sink import Sink
from resumable._stores import Store
from resumable._timing import Timing
from resumable._triggers import Trigger

OnCorrupt: TypeAlias = Literal["raise", "quarantine"]
Interval: TypeAlias = float | EllipsisType | None

DEFAULT_GRACE = 5.0
"""Seconds the work in flight gets to reach its next yield after an abort or a signal."""


def _positive_count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidOptionError(
            f"{attribute.name}= must be a positive whole number, not {value!r}"
        )


def _seconds(*, allow_zero: bool) -> Any:  # an attrs validator
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None or value is ...:
            return
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value < 0
            or (value == 0 and not allow_zero)
        ):
            what = "0 or more" if allow_zero else "a positive number of"
            raise InvalidOptionError(
                f"{attribute.name}= must be {what} seconds (a finite number), not {value!r}"
            )

    return check


def _one_of(*allowed: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            choices = " or ".join(repr(a) for a in allowed)
            raise InvalidOptionError(f"{attribute.name}= must be {choices}, not {value!r}")

    return check


def _sink(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Sink):
        raise InvalidOptionError(
            f"sink= must be a Sink (count(), read(start, limit), append(items, start)), "
            f"such as JsonLinesSink(path), not {value!r}"
        )


def _timing(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Timing):
        raise InvalidOptionError(
            f"timing= must be a Timing (such as Timing(save=30.0)) or None, not {value!r}"
        )


def _converter(value: cattrs.Converter | None) -> cattrs.Converter:
    return make_converter() if value is None else value


def _triggers(value: Iterable[Trigger] | None) -> tuple[Trigger, ...] | None:
    return None if value is None else tuple(value)


def _upgrades(value: Mapping[int, Upgrade] | None) -> Mapping[int, Upgrade]:
    steps = dict(value or {})
    for version, step in steps.items():
        if not isinstance(version, int) or not callable(step):
            raise InvalidOptionError(
                "upgrade= maps a cursor version (int) to a function from the raw JSON of that "
                f"version to the next one's; got {version!r}: {step!r}"
            )
    return MappingProxyType(steps)


class Options(TypedDict, total=False):
    """The keyword options `@resumable` and `job()` take, each described on `JobOptions`."""

    store: Store | None
    every: int | None
    interval: Interval
    converter: cattrs.Converter | None
    triggers: Iterable[Trigger] | None
    version: int
    upgrade: Mapping[int, Upgrade] | None
    on_corrupt: OnCorrupt
    warn_size: int
    max_size: int
    grace: float
    sink: Sink | None
    timing: Timing | None


@attrs.frozen(kw_only=True)
class JobOptions:
    """The options a job was declared with, checked when declared.

    Attributes:
        store: Where the state lives. Default: the Actor's key-value store inside
            ``async with Actor:``, else ``FileStore(".resumable")``, chosen at start.
        every: Also save every N yields (or advances).
        interval: Save every N seconds (``None``: never on a timer). Default: 10 s, or the
            platform's ``persistState`` events inside an Actor.
        converter: A cattrs converter for the cursor type (default: a private one that
            knows JSON, UUIDs, decimals and paths).
        triggers: What else saves or stops the job. Default: SIGTERM/SIGINT, plus the
            platform's events inside an Actor (this list replaces the defaults).
        version: The cursor's version, stored with it.
        upgrade: ``{old_version: fn}``: raw JSON to raw JSON, applied on load one step at a
            time.
        on_corrupt: ``"raise"`` or ``"quarantine"`` (move a bad record aside and start fresh).
        warn_size: Warn once when a serialized record passes this many bytes.
        max_size: Refuse cursors that serialize to more bytes than this.
        grace: Seconds the work in flight gets, after an abort or a signal, to reach its
            next yield (in the ``job`` form: to see ``j.stopping`` and leave the block)
            before it is cancelled.
        sink: Where the outputs pushed into the job's outbox go. Default, once the outbox
            is used: the Actor's default dataset inside ``async with Actor:``, else
            ``JsonLinesSink(".resumable/<key>.jsonl")``.
        timing: How long the run's store calls keep retrying, and the waits in between
            (`Timing`). Default: ``Timing()`` (a save retries for 10 s), or the fast
            timing that `resumable.testing.fast_timing` switches tests to.
    """

    store: Store | None = None
    every: int | None = attrs.field(default=None, validator=_positive_count)
    interval: Interval = attrs.field(default=..., validator=_seconds(allow_zero=False))
    converter: cattrs.Converter = attrs.field(factory=make_converter, converter=_converter)
    triggers: tuple[Trigger, ...] | None = attrs.field(default=None, converter=_triggers)
    version: int = attrs.field(default=1, validator=_positive_count)
    upgrade: Mapping[int, Upgrade] = attrs.field(factory=dict, converter=_upgrades)
    on_corrupt: OnCorrupt = attrs.field(default="raise", validator=_one_of("raise", "quarantine"))
    warn_size: int = attrs.field(default=64 * 1024, validator=_positive_count)
    max_size: int = attrs.field(default=1024 * 1024, validator=_positive_count)
    grace: float = attrs.field(default=DEFAULT_GRACE, validator=_seconds(allow_zero=True))
    sink: Sink | None = attrs.field(default=None, validator=_sink)
    timing: Timing | None = attrs.field(default=None, validator=_timing)

    @classmethod
    def of(cls, where: str, options: Options) -> JobOptions:
        """Check and freeze the keyword *options* given to *where*.

        Raises:
            InvalidOptionError: An option that does not exist, or a value that makes no sense.
        """
        return _DEFAULTS.evolve(where, **options)

    @classmethod
    def names(cls) -> list[str]:
        """Return the option names, sorted."""
        return sorted(a.name for a in attrs.fields(cls))

    def evolve(self, where: str, **changes: Any) -> JobOptions:
        """Return these options with *changes* applied.

        Raises:
            InvalidOptionError: An option that does not exist, or a value that makes no sense.
        """
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise InvalidOptionError(
                f"{where} got unknown options {unknown}; it takes {self.names()}"
            )
        return attrs.evolve(self, **changes)

    def codec(self, key: str, store: object, cursor_type: Any) -> Codec[Any]:
        """Return the codec of *key*'s records in *store* under these options."""
        return Codec(
            key,
            store,
            cursor_type,
            self.converter,
            version=self.version,
            upgrade=self.upgrade,
            warn_size=self.warn_size,
            max_size=self.max_size,
        )


_DEFAULTS = JobOptions()
