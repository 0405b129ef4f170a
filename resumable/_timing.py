"""`Timing`: how long a run's store calls keep trying, and how long they wait in between.

One frozen value holds every budget of the engine's retries: a save's, the claim's at the
start of a run, and the backoff between attempts. A job takes it from its options
(``timing=``), else the default one, which `resumable.testing.fast_timing` switches to a
fast one for tests; the writer holds it for the whole run, and everything that bounds a
store call in time reads it there.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import tenacity

from resumable._errors import InvalidOptionError


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidOptionError(
            f"Timing({attribute.name}=...) must be 0 or more seconds (a finite number), "
            f"not {value!r}"
        )


@attrs.frozen(kw_only=True)
class Timing:
    """How long a run's store calls keep trying, and the waits between their attempts.

    Attributes:
        save: Seconds one save (and the delivery of the outputs it holds) keeps retrying a
            failing store before it raises `StoreError`, when no stop set a shorter budget.
        claim: Seconds taking the key over at the start of a run keeps retrying (an older
            run may be busy writing it).
        claim_refused: Seconds the claim keeps retrying a store whose connections are
            refused: long enough for a server that restarts, short enough that a wrong
            address is reported at once. Saves later in a run keep their whole budget.
        backoff: Seconds before the second attempt; each wait doubles it, up to
            ``backoff_max``.
        backoff_max: The longest wait between two attempts.
        jitter: Up to this many seconds added at random to each wait, so that runs that
            fail together do not retry in step.
    """

    save: float = attrs.field(default=10.0, validator=_seconds)
    claim: float = attrs.field(default=10.0, validator=_seconds)
    claim_refused: float = attrs.field(default=3.0, validator=_seconds)
    backoff: float = attrs.field(default=0.02, validator=_seconds)
    backoff_max: float = attrs.field(default=1.0, validator=_seconds)
    jitter: float = attrs.field(default=0.02, validator=_seconds)

    def waits(self) -> tenacity.wait.wait_base:
        """The waits between attempts, as tenacity takes them."""
        exponential = tenacity.wait_exponential(multiplier=self.backoff, max=self.backoff_max)
        return exponential + tenacity.wait_random(0, self.jitter)


DEFAULT = Timing()
"""What a job's store calls get unless a test switched to `FAST`."""

FAST = Timing(save=1.0, claim=1.0, claim_refused=0.5, backoff=0.001, backoff_max=0.001, jitter=0)
"""Budgets for tests: a store that keeps failing is given up on within a second, and an
attempt follows the last after a millisecond."""


class _Default:
    """The one place that holds the timing of the jobs whose options give none."""

    timing = DEFAULT


def default() -> Timing:
    """The timing of a run whose options give none (read when the run starts)."""
    return _Default.timing


def set_default(timing: Timing) -> Timing:
    """Make *timing* the default of the runs that start from now on; return the previous one."""
    previous, _Default.timing = _Default.timing, timing
    return previous
