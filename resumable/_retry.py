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
from resumable._redact import redact
from resumable._stores._base import CredentialsRefusedError
from resumable._timing import Timing, default

T = TypeVar("T")


class Conflict(Exception):  # noqa: N818 - a signal between two of our functions, not an error
    """Someone wrote the key between our load and our write: load again and retry."""


def transient(exc: BaseException) -> bool:
    """Whether *exc* is worth another attempt: an ordinary failure that is not a decision
    and not a refusal of the credentials (they will not be accepted the next time either)."""
    return (
        isinstance(exc, Exception)
        and not isinstance(exc, ResumableError)
        and not isinstance(exc, CredentialsRefusedError)
    )


def refused(exc: BaseException) -> bool:
    """Whether *exc* is a connection refused, as a driver raises it or wraps it."""
    return _in_chain(exc, ConnectionRefusedError)


def explain(exc: BaseException) -> tuple[str, str]:
    """Say what *exc* means for a user, and what to do: ``(reason, advice)``.

    Used by the engine's errors and by the command line alike, so both tell the same story.
    """
    said = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, CredentialsRefusedError):  # it names the driver's error itself
        return (
            f"the store refused the credentials it was given ({redact(str(exc))})",
            "check the user name and password in the store's URL",
        )
    if refused(exc):
        return (
            f"the connection was refused, so nothing listens at the store's address ({said})",
            "check the host and port in the store's URL, and that its server is running",
        )
    if isinstance(exc, TimeoutError) and not str(exc):
        return "it did not answer before the deadline", "check that the store is reachable"
    return said, "check that the store is reachable and writable"


def _in_chain(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _Stop(tenacity.stop.stop_base):
    """Past the deadline; or, once *refused_until* has passed, while connections are refused."""

    def __init__(self, deadline: float, refused_until: float | None) -> None:
        self._deadline = deadline
        self._refused_until = refused_until

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        now = asyncio.get_running_loop().time()
        if now >= self._deadline:
            return True
        if self._refused_until is None or now < self._refused_until:
            return False
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        return failure is not None and refused(failure)


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    describe: Callable[[], str],
    refused_for: float | None = None,
    error: type[StoreError] = StoreError,
    advice: str | None = None,
    timing: Timing | None = None,
) -> T:
    """Run *operation* until it succeeds or the loop's clock passes *deadline*.

    Every attempt is also cut off at the deadline, so a hung call cannot outlive it.

    Args:
        operation: One attempt.
        deadline: In the running loop's clock (``loop.time()``).
        describe: Says what was being done, to whom, in which store (for the error).
        refused_for: Give up sooner, after this many seconds, on a store whose connections
            are refused (a server restarting refuses them for a moment; a wrong address
            forever).
        error: What to raise when it still failed (a sink's failure is a `SinkError`).
        advice: What the error tells the user to do, after what happened; by default that
            the previous record is unchanged, and what to check about the store.
        timing: Whose backoff waits between attempts (the run's); by default the default
            timing's (`resumable._timing`).

    Raises:
        StoreError: It still failed (an *error*); the last failure is chained. Its message
            says why, from the last real failure when the deadline cut the last attempt short.
    """
    loop = asyncio.get_running_loop()
    began = loop.time()
    refused_until = None if refused_for is None else began + refused_for
    retry = tenacity.AsyncRetrying(
        stop=_Stop(deadline, refused_until),
        wait=(timing or default()).waits(),
        retry=tenacity.retry_if_exception(transient),
        reraise=True,
    )
    failure: Exception | None = None  # the latest one not of the deadline's making
    try:
        async for attempt in retry:
            with attempt:
                scope = asyncio.timeout_at(deadline)
                try:
                    async with scope:
                        return await operation()
                except Exception as exc:
                    if not scope.expired():
                        failure = exc
                    raise
    except Exception as exc:
        if isinstance(exc, ResumableError):
            raise
        attempts = retry.statistics.get("attempt_number", 1)
        # An attempt cut short by the deadline says nothing: the failure before it does.
        reason, check = explain(exc if failure is None else failure)
        said = f"The previous record is unchanged; {check}." if advice is None else advice
        raise error(
            f"{describe()} failed after {attempts} attempt(s) in {loop.time() - began:.1f} s: "
            f"{reason}. {said}"
        ) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
