"""`fast_timing`: the switch that makes a job's retries fast, for tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import attrs

from resumable._timing import FAST, Timing, set_default

__all__ = ["fast_timing"]


@contextlib.contextmanager
def fast_timing(**changes: float) -> Iterator[Timing]:
    """Make the jobs that start inside the block give up on a failing store fast.

    Inside it, a job whose options give no ``timing=`` gets a `resumable.Timing` whose
    saves and claim keep retrying for one second (not ten) and wait a millisecond between
    attempts; *changes* set its fields (``fast_timing(save=0.05)``). The jobs keep the
    timing they started with; the default comes back when the block is left. For a
    whole test session, use the ``resumable_fast_timing`` fixture of the pytest plugin.

    Yields:
        The timing the jobs get.

    Raises:
        TypeError: A name that is not a field of `resumable.Timing`.
        InvalidOptionError: A value that is not 0 or more seconds.
    """
    timing = attrs.evolve(FAST, **changes)
    previous = set_default(timing)
    try:
        yield timing
    finally:
        set_default(previous)
