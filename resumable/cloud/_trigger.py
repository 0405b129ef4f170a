"""`PreemptionNotice`: the trigger that hears spot and preemptible machines' notices."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from resumable._controls import Controls
from resumable._errors import InvalidOptionError
from resumable._triggers import Detach
from resumable.cloud import _aws, _azure, _gcp
from resumable.cloud._notice import Notice, Provider, log

DEFAULT_ENDPOINTS: Mapping[str, str] = MappingProxyType(
    {"aws": _aws.DEFAULT_URL, "gcp": _gcp.DEFAULT_URL, "azure": _azure.DEFAULT_URL}
)
"""Each provider's metadata service, as the provider documents it."""

MIN_BUDGET = 0.5
"""The least time a save is given, even when the notice leaves less: one attempt is still
worth making."""

ACK_TIMEOUT = 2.0
"""Seconds the acknowledgement of a notice may take."""

RETRY_DELAY = 1.0
"""Seconds before asking again after a metadata service failed to answer."""


class PreemptionNotice:
    """Abort the job on a spot or preemptible machine's notice, saving within the time it leaves.

    When the job starts, a background task asks each watched provider's metadata service
    (connection timeout 1 s) whether it runs there. Off a cloud nobody answers, and the task
    ends with one DEBUG line; the job never waits for it. On a cloud it watches that
    provider's notice as the provider advises:

    - AWS spot: ``spot/instance-action`` through IMDSv2 (session token), every 5 s; the
      notice comes about two minutes ahead and says when.
    - Google Cloud Spot and preemptible VMs: ``instance/preempted``, long-polled, so the
      change is heard at once. The value carries no time: the budget counts 30 s (what
      Google documents for Spot VMs) from the moment it is heard.
    - Azure: Scheduled Events, every second; a ``Preempt`` (or ``Terminate``) event for
      this VM, whose ``NotBefore`` is the deadline (at least 30 s ahead).

    On a notice it acts as the platform's ``aborting`` does: it calls ``abort`` with the
    seconds left until the deadline, minus *safety_margin*, as the save's budget; the job
    stops, its generator is closed and the run ends ``"aborted"``. On Azure it then
    approves the event (``StartRequests``) once that save is durable, so the VM may go
    before ``NotBefore``: cleanup after the save races the eviction. A notice whose save
    failed, or that found the job aborting already, approves nothing. AWS ``hibernate``
    freezes the process instead of ending it: that notice asks for a save and the job
    carries on. A metadata service that stops answering, or answers nonsense (a malformed
    HTTP message, a document whose fields have other types), is logged and asked again at
    the provider's cadence: only the job's end stops the watch.

    Args:
        endpoints: ``{"aws" | "gcp" | "azure": base URL}`` of the metadata services to
            watch; only the providers named are watched. Default: all three, at the
            addresses the providers document.
        safety_margin: Seconds kept back from the time a notice leaves.
        poll_interval: Seconds between polls of AWS and Azure (default: their advice,
            5 s and 1 s). Google Cloud is long-polled and needs none.
        acknowledge: Approve an Azure event once the cursor is saved.

    Raises:
        InvalidOptionError: An unknown provider, a URL that is not ``http://``, or a
            negative margin or interval.
    """

    def __init__(
        self,
        *,
        endpoints: Mapping[str, str] | None = None,
        safety_margin: float = 2.0,
        poll_interval: float | None = None,
        acknowledge: bool = True,
    ) -> None:
        chosen = DEFAULT_ENDPOINTS if endpoints is None else endpoints
        unknown = sorted(set(chosen) - set(DEFAULT_ENDPOINTS))
        if unknown:
            raise InvalidOptionError(
                f"PreemptionNotice(endpoints=...) names {', '.join(map(repr, unknown))}; the "
                "providers it knows are 'aws', 'gcp' and 'azure'."
            )
        for name, url in chosen.items():
            if not url.startswith("http://"):
                raise InvalidOptionError(
                    f"PreemptionNotice(endpoints=...): the {name!r} endpoint {url!r} is not an "
                    "http:// URL; metadata services are plain HTTP, e.g. 'http://169.254.169.254'."
                )
        if safety_margin < 0 or (poll_interval is not None and poll_interval <= 0):
            raise InvalidOptionError(
                "PreemptionNotice: safety_margin must be >= 0 and poll_interval > 0 seconds, "
                f"got safety_margin={safety_margin!r}, poll_interval={poll_interval!r}."
            )
        self.endpoints: Mapping[str, str] = MappingProxyType(
            {name: url.rstrip("/") for name, url in chosen.items()}
        )
        self.safety_margin = safety_margin
        self.poll_interval = poll_interval
        self.acknowledge = acknowledge

    def __repr__(self) -> str:
        return f"PreemptionNotice(endpoints={dict(self.endpoints)!r})"

    def budget(self, notice: Notice, now: datetime | None = None) -> float:
        """Seconds the save may take: the time *notice* leaves, minus the safety margin."""
        left = (notice.deadline - (now or datetime.now(UTC))).total_seconds()
        return max(left - self.safety_margin, MIN_BUDGET)

    def attach(self, controls: Controls) -> Detach:
        """Start watching in the background for *controls*' job; return what stops it."""
        return _Watch(self, self._providers(), controls).detach

    def _providers(self) -> list[Provider]:
        """A fresh watcher for each provider named in `endpoints`."""
        made: list[Provider] = []
        for name, url in self.endpoints.items():
            if name == "aws":
                made.append(_aws.Aws(url, interval=self.poll_interval or 5.0))
            elif name == "gcp":
                made.append(_gcp.Gcp(url))
            else:
                made.append(_azure.Azure(url, interval=self.poll_interval or 1.0))
        return made


class _Watch:
    """One job's watch: detection, then the notice, then the abort (and the approval)."""

    def __init__(
        self, options: PreemptionNotice, providers: list[Provider], controls: Controls
    ) -> None:
        self._options = options
        self._providers = providers
        self._controls = controls
        self._acting = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"resumable-preemption:{controls.key}"
        )

    def detach(self) -> None:
        """Stop watching. A notice already being acted on finishes (it is bounded in time)."""
        if not self._acting:
            self._task.cancel()

    async def _run(self) -> None:
        key = self._controls.key
        try:
            provider, absent = await _detect(self._providers)
            if provider is None:
                log.debug(
                    "job %r: no cloud metadata service answered (%s); not watching for "
                    "preemption notices",
                    key,
                    "; ".join(absent),
                )
                return
            log.info("job %r: running on %s; watching for preemption notices", key, provider.name)
            await self._follow(provider)
        except Exception:  # noqa: BLE001 - a background task has nobody to raise to
            log.exception("job %r: preemption notices are no longer watched", key)

    async def _follow(self, provider: Provider) -> None:
        key = self._controls.key
        seen: set[Notice] = set()
        while True:
            notice = await _next_notice(provider, key, seen)
            budget = self._options.budget(notice)
            what = f"{notice.provider} notice: {notice.action} at {notice.deadline:%H:%M:%S %Z}"
            if not notice.stops:
                log.info("job %r: %s; saving, the job carries on", key, what)
                self._controls.request_save()
                continue
            self._acting = True
            saves = self._controls.saves
            await self._controls.abort(f"{what}, saving within {budget:.1f} s", budget=budget)
            if self._options.acknowledge and notice.event_id is not None:
                if self._controls.saves > saves:
                    await _acknowledge(provider, notice, key)
                else:
                    log.info(
                        "job %r: not approving %s event %s early: this notice saved nothing",
                        key,
                        notice.provider,
                        notice.event_id,
                    )
            return


async def _detect(providers: Iterable[Provider]) -> tuple[Provider | None, list[str]]:
    """Ask every provider at once; return the first that answers (cancelling the others),
    or None and why each one did not."""
    pending = {asyncio.ensure_future(provider.detect()): provider for provider in providers}
    absent: list[str] = []
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                provider = pending.pop(task)
                exc = task.exception()
                if exc is None:
                    return provider, absent
                if not isinstance(exc, Exception):
                    raise exc
                # Something other than this provider's service answered (or nothing did).
                absent.append(f"{provider.name} at {provider.url}: {_reason(exc)}")
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in pending:
            if not task.cancelled():
                task.exception()  # seen: only the first answer counts
    return None, absent


async def _next_notice(provider: Provider, key: str, seen: set[Notice]) -> Notice:
    """Poll *provider* at its cadence until it announces a notice not in *seen*.

    Whatever a poll raises (a service that does not answer, or answers something that is
    not the document it should be) is logged and the poll tried again: only the job's end,
    which cancels the watch, stops it.
    """
    failing = False
    while True:
        try:
            notice = await provider.poll()
        except Exception as exc:  # noqa: BLE001 - one bad answer must not end the watch
            if not failing:
                log.warning(
                    "job %r: could not read the %s preemption notice (%s); trying again",
                    key,
                    provider.name,
                    _reason(exc),
                    exc_info=not isinstance(exc, OSError),
                )
            failing = True
            await asyncio.sleep(max(provider.interval, RETRY_DELAY))
            continue
        if failing:
            log.info("job %r: reading the %s preemption notice again", key, provider.name)
            failing = False
        if notice is not None and notice not in seen:
            seen.add(notice)
            return notice
        await asyncio.sleep(provider.interval)


async def _acknowledge(provider: Provider, notice: Notice, key: str) -> None:
    try:
        async with asyncio.timeout(ACK_TIMEOUT):
            await provider.acknowledge(notice)
    except Exception as exc:  # noqa: BLE001 - the save is made; the approval is a courtesy
        log.warning(
            "job %r: could not approve %s event %s: %s",
            key,
            notice.provider,
            notice.event_id,
            _reason(exc),
        )
    else:
        log.info("job %r: approved %s event %s", key, notice.provider, notice.event_id)


def _reason(exc: BaseException) -> str:
    return f"{exc}" if isinstance(exc, OSError) and str(exc) else f"{type(exc).__name__}: {exc}"
