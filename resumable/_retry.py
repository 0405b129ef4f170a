"""Retrying one store operation inside a deadline, with tenacity.

Only ordinary failures (`Exception`) are retried. Cancellation, ``KeyboardInterrupt``,
``SystemExit`` and every other `BaseException` are control flow: they go through at once,
unchanged. Our own errors (`ResumableError`) are decisions, never retried either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity

from resumable._errors import ResumableError, StoreError

T = TypeVar("T")

BACKOFF = tenacity.wait_exponential(multiplier=0.02, max=1.0) + tenacity.wait_random(0, 0.02)
"""Between attempts: 20 ms doubling up to 1 s, with jitter so that runs do not march in step."""


class Conflict(Exception):  # noqa: N818 - a signal between two of our functions, not an error
    """Someone wrote the key between our load and our write: load again and retry."""


def transient(exc: BaseException) -> bool:
    """Whether *exc* is worth another attempt: an ordinary failure that is not a decision."""
    return isinstance(exc, Exception) and not isinstance(exc, ResumableError)


class _PastDeadline(tenacity.stop.stop_base):
    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return asyncio.get_running_loop().time() >= self._deadline


async def retrying(
    operation: Callable[[], Awaitable[T]], *, deadline: float, describe: Callable[[], str]
) -> T:
    """Run *operation* until it succeeds or the loop's clock passes *deadline*.

    Every attempt is also cut off at the deadline, so a hung call cannot outlive it.

    Args:
        operation: One attempt.
        deadline: In the running loop's clock (``loop.time()``).
        describe: Says what was being done, to whom, in which store (for the error).

    Raises:
        StoreError: It still failed; the last failure is chained.
    """
    retry = tenacity.AsyncRetrying(
        stop=_PastDeadline(deadline),
        wait=BACKOFF,
        retry=tenacity.retry_if_exception(transient),
        reraise=True,
    )
    try:
        async for attempt in retry:
            with attempt:
                async with asyncio.timeout_at(deadline):
                    return await operation()
    except Exception as exc:
        if not transient(exc):
            raise
        attempts = retry.statistics.get("attempt_number", 1)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__}"
        if isinstance(exc, TimeoutError) and not str(exc):
            reason = "it did not answer before the deadline"
        raise StoreError(
            f"{describe()} failed after {attempts} attempt(s): {reason}. The previous record "
            "is unchanged; check that the store is reachable and writable."
        ) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
