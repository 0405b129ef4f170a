"""Preemption notices: every cloud's notice saves, closes the generator and ends ``aborted``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

import pytest
from helpers import wait_until

from resumable import FileStore, Guard, InvalidOptionError, resumable
from resumable._stores import Change
from resumable.cloud import Notice, PreemptionNotice
from resumable.cloud._aws import Aws
from resumable.cloud._gcp import Gcp
from resumable.cloud._http import request
from resumable.testing import (
    AwsMetadata,
    AzureMetadata,
    BlackHole,
    GcpMetadata,
    MetadataServer,
)

STAND_INS: dict[str, Callable[[], MetadataServer]] = {
    "aws": AwsMetadata,
    "gcp": GcpMetadata,
    "azure": AzureMetadata,
}
APPROVAL = ("POST", "/metadata/scheduledevents", 200)
CHILD = Path(__file__).with_name("preemption_child.py")


class TimedStore(FileStore):
    """A FileStore that notes, for every write, its status and what had happened by then."""

    def __init__(self, directory: Path, probe: Callable[[], int] = lambda: 0) -> None:
        super().__init__(directory)
        self.writes: list[tuple[str, int]] = []
        self._probe = probe

    async def update(self, key: str, change: Change) -> None:
        written: list[bytes] = []

        def noting(current: bytes | None) -> bytes:
            written.append(change(current))
            return written[-1]

        await super().update(key, noting)  # every write, the claim's and the saves', goes here
        status = "aborted" if b'"aborted"' in written[-1] else "other"
        self.writes.append((status, self._probe()))


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[arg-type]


def closed_port() -> str:
    """The URL of a 127.0.0.1 port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Silent:
    """A 127.0.0.1 server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.open = 0
        self.closed = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        await reader.read()  # until the client goes away
        self.closed += 1
        writer.close()


@pytest.mark.parametrize("provider", sorted(STAND_INS))
async def test_a_notice_saves_the_latest_cursor_closes_the_generator_and_ends_aborted(
    tmp_path: Path, provider: str
):
    """On each provider's notice the latest cursor is saved before the deadline, the
    generator's finally runs and the run ends aborted; Azure's event is approved after."""
    async with STAND_INS[provider]() as cloud:
        store = TimedStore(tmp_path / "state", probe=lambda: len(cloud.requests))
        notice = PreemptionNotice(endpoints={provider: cloud.url}, poll_interval=0.02)
        yielded: list[int] = []
        closed = []

        @resumable(key="spot", store=store, interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            try:
                for i in range(cursor, 10**9):
                    await asyncio.sleep(0.001)
                    yielded.append(i + 1)
                    yield i + 1
            finally:
                closed.append(True)

        run = asyncio.ensure_future(work())
        await cloud.watched(count=2)  # for Google Cloud: a long poll is waiting
        await wait_until(lambda: len(yielded) > 3)
        deadline = cloud.preempt(in_seconds=20)
        outcome = await asyncio.wait_for(run, timeout=20)
        record = await work.state()
        if isinstance(cloud, AzureMetadata):
            await cloud.wait_for(lambda: APPROVAL in cloud.requests)
        requests_when_durable = [seen for status, seen in store.writes if status == "aborted"]
        budget_ends = deadline - timedelta(seconds=notice.safety_margin)

        assert "aborted" == outcome.status
        assert [True] == closed
        assert yielded[-1] == outcome.cursor
        assert record is not None
        assert (outcome.cursor, "aborted") == (record.cursor, record.status)
        assert record.updated_at <= budget_ends
        if isinstance(cloud, AzureMetadata):
            # Approved once the aborted record was durable, never before.
            assert [cloud.events[0]["EventId"]] == cloud.approved
            assert requests_when_durable[0] <= cloud.requests.index(APPROVAL)


@pytest.mark.parametrize("provider", sorted(STAND_INS))
async def test_detach_cancels_the_watch(tmp_path: Path, provider: str):
    """A job that ends while its trigger watches leaves no task and no connection behind."""
    async with STAND_INS[provider]() as cloud:
        notice = PreemptionNotice(endpoints={provider: cloud.url}, poll_interval=0.02)
        go = asyncio.Event()

        @resumable(key="spot", store=FileStore(tmp_path), interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            yield 1
            await go.wait()
            yield 2

        run = asyncio.ensure_future(work())
        await cloud.watched(count=2)
        go.set()
        outcome = await run
        await wait_until(lambda: not other_tasks())
        await cloud.wait_for(lambda: not cloud.open_connections)

        assert ("completed", 2) == (outcome.status, outcome.cursor)
        assert set() == other_tasks()


async def test_off_cloud_the_job_runs_at_once_and_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """With no metadata service answering (refused, silent, dropping connections), the job
    starts without waiting, completes, logs nothing above DEBUG, and leaves nothing running."""
    caplog.set_level(logging.DEBUG, logger="resumable")
    async with Silent() as silent:
        with BlackHole() as hole:
            notice = PreemptionNotice(
                endpoints={"aws": closed_port(), "gcp": silent.url, "azure": hole.url}
            )
            probing_at_first_cursor = []

            @resumable(key="quiet", store=FileStore(tmp_path), triggers=[notice])
            async def work(*, cursor: int = 0) -> AsyncIterator[int]:
                await wait_until(lambda: silent.open == 1)
                yield 1
                probing_at_first_cursor.append(silent.open - silent.closed)
                yield 2

            outcome = await work()
            await wait_until(lambda: not other_tasks())
            await wait_until(lambda: silent.closed == 1)
    ours = [r for r in caplog.records if r.name == "resumable.cloud"]
    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.INFO]

    assert ("completed", 2) == (outcome.status, outcome.cursor)
    assert [1] == probing_at_first_cursor
    assert [] == loud
    assert [] == [r.getMessage() for r in ours if r.levelno > logging.DEBUG]
    assert set() == other_tasks()


async def test_off_cloud_the_trigger_says_why_in_one_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """When every probe has failed, one DEBUG line names each provider and why; no more."""
    caplog.set_level(logging.DEBUG, logger="resumable")
    endpoints = {name: closed_port() for name in ("aws", "gcp", "azure")}

    def ours() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "resumable.cloud"]

    @resumable(
        key="quiet", store=FileStore(tmp_path), triggers=[PreemptionNotice(endpoints=endpoints)]
    )
    async def work(*, cursor: int = 0) -> AsyncIterator[int]:
        await wait_until(lambda: bool(ours()))
        yield 1

    outcome = await work()
    message = ours()[0].getMessage()

    assert "completed" == outcome.status
    assert [logging.DEBUG] == [r.levelno for r in ours()]
    assert all(
        f"{name} at {endpoints[key]}" in message
        for key, name in [("aws", "AWS"), ("gcp", "Google Cloud"), ("azure", "Azure")]
    )


async def test_a_silent_metadata_service_is_given_up_on():
    """A service that accepts but never answers is given up after the probe's timeout."""
    async with Silent() as silent:
        with pytest.raises(TimeoutError):
            await Aws(silent.url).detect()


async def test_a_connection_attempt_that_is_dropped_is_bounded():
    """A connection to an address that drops attempts gives up after its connect timeout."""
    with BlackHole() as hole, pytest.raises(TimeoutError):
        await request("GET", hole.url, connect_timeout=0.2, timeout=10)


async def test_a_chunked_response_is_read_whole():
    """Metadata services may frame a body in chunks; the client joins them."""

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nTRUE\r\n3;ext=1\r\n!!!\r\n0\r\nTrailer: x\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(chunked, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        response = await request("GET", f"http://127.0.0.1:{port}/", connect_timeout=1, timeout=5)

    assert (200, b"TRUE!!!") == (response.status, response.body)


async def test_hibernate_saves_and_the_job_carries_on(tmp_path: Path):
    """AWS ``hibernate`` freezes the process rather than ending it: save, keep working."""
    async with AwsMetadata() as aws:
        store = TimedStore(tmp_path)
        notice = PreemptionNotice(endpoints={"aws": aws.url}, poll_interval=0.02)
        go = asyncio.Event()

        @resumable(key="hib", store=store, interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            yield 1
            await go.wait()
            yield 2

        run = asyncio.ensure_future(work())
        await aws.watched()
        aws.preempt(in_seconds=60, action="hibernate")
        await wait_until(lambda: len(store.writes) == 2)
        await aws.watched(count=aws.watches + 2)
        go.set()
        outcome = await run

    assert ("completed", 2) == (outcome.status, outcome.cursor)
    assert 3 == len(store.writes)


async def test_an_azure_event_for_another_vm_is_ignored(tmp_path: Path):
    """Scheduled events list the whole group's VMs; only an event naming this VM counts."""
    async with AzureMetadata(vm="me") as azure:
        notice = PreemptionNotice(endpoints={"azure": azure.url}, poll_interval=0.02)
        go = asyncio.Event()

        @resumable(key="vm", store=FileStore(tmp_path), interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            yield 1
            await go.wait()
            yield 2

        run = asyncio.ensure_future(work())
        await azure.watched()
        azure.preempt(in_seconds=60, resources=["someone-else"])
        await azure.watched(count=azure.watches + 2)
        go.set()
        outcome = await run

    assert ("completed", 2) == (outcome.status, outcome.cursor)
    assert [] == azure.approved


async def test_the_aws_session_token_is_renewed_before_it_expires():
    """Polls carry a fresh IMDSv2 token: a short-lived one is renewed, never answered 401."""
    async with AwsMetadata() as aws:
        watcher = Aws(aws.url, ttl=2)
        await watcher.detect()
        while len(aws.tokens) < 2:
            assert await watcher.poll() is None
            await asyncio.sleep(0.05)

    assert [] == [r for r in aws.requests if r[2] == 401]


async def test_a_revoked_aws_token_is_replaced_and_the_poll_goes_on():
    """A 401 (the service forgot the token) fetches a new token and asks again at once."""
    async with AwsMetadata() as aws:
        watcher = Aws(aws.url)
        await watcher.detect()
        aws.tokens.clear()
        notice = await watcher.poll()

    assert notice is None
    assert [401, 200, 404] == [status for _, _, status in aws.requests[-3:]]


async def test_the_stand_ins_refuse_requests_without_the_providers_header():
    """Each stand-in checks what its provider checks: the token, the flavor, the header."""
    async with AwsMetadata() as aws, GcpMetadata() as gcp, AzureMetadata() as azure:
        answers = [
            await request("GET", url, connect_timeout=1, timeout=1)
            for url in (
                aws.url + "/latest/meta-data/spot/instance-action",
                gcp.url + "/computeMetadata/v1/instance/preempted",
                azure.url + "/metadata/scheduledevents?api-version=2020-07-01",
            )
        ]
        unversioned = await request(
            "GET",
            azure.url + "/metadata/scheduledevents",
            headers={"Metadata": "true"},
            connect_timeout=1,
            timeout=1,
        )

    assert [401, 403, 400] == [a.status for a in answers]
    assert 400 == unversioned.status


def test_budget_is_the_time_the_notice_leaves_minus_the_margin():
    """The save's budget: seconds to the deadline minus the margin, never below half a second."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    notice = PreemptionNotice(safety_margin=2.0)

    def budget(seconds: float) -> float:
        return notice.budget(Notice("AWS", "terminate", now + timedelta(seconds=seconds)), now)

    assert 118.0 == budget(120)
    assert 28.0 == budget(30)
    assert 0.5 == budget(1)
    assert 0.5 == budget(-5)


def test_defaults_watch_every_provider_at_its_documented_address():
    """Without endpoints, all three providers are watched at their real addresses."""
    assert {
        "aws": "http://169.254.169.254",
        "gcp": "http://metadata.google.internal",
        "azure": "http://169.254.169.254",
    } == dict(PreemptionNotice().endpoints)
    assert ["AWS"] == [
        p.name for p in PreemptionNotice(endpoints={"aws": "http://x/"})._providers()
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoints": {"aws": "http://a", "oracle": "http://o"}}, "'oracle'"),
        ({"endpoints": {"gcp": "https://metadata.google.internal"}}, "not an http:// URL"),
        ({"safety_margin": -1}, "safety_margin"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_wrong_options_are_refused_with_a_clear_message(options: dict[str, object], message: str):
    """A mistyped provider, an https URL or a negative margin says what is wrong at once."""
    with pytest.raises(InvalidOptionError, match=message):
        PreemptionNotice(**options)  # type: ignore[arg-type]


def processed(log: Path) -> list[int]:
    """Items the child started, in order (the last line may be torn by the kill)."""
    text = log.read_text() if log.exists() else ""
    lines = text.split("\n")
    return [int(line) for line in (lines if text.endswith("\n") else lines[:-1]) if line]


@pytest.mark.slow
@pytest.mark.parametrize("provider", sorted(STAND_INS))
async def test_a_child_killed_at_the_deadline_loses_nothing_before_the_saved_cursor(
    tmp_path: Path, provider: str
):
    """A real process told of a preemption and SIGKILLed at the deadline, its cleanup still
    running, resumes from a cursor at least as far as the work done at the notice."""
    state, log = tmp_path / "state", tmp_path / "log"
    async with STAND_INS[provider]() as cloud:

        async def child(*extra: str) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                str(CHILD),
                str(state),
                str(log),
                provider,
                cloud.url,
                *extra,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=os.environ | {"PYTHONPATH": str(Path(__file__).parent.parent)},
            )

        first = await child()
        await cloud.watched()
        await wait_until(lambda: len(processed(log)) > 20, timeout=20)
        done_at_notice = len(processed(log))
        deadline = cloud.preempt(in_seconds=2)
        await wait_until(lambda: datetime.now(UTC) >= deadline, timeout=10)
        alive_at_deadline = first.returncode is None
        first.send_signal(signal.SIGKILL)
        out, err = await first.communicate()
        cloud.clear()
        first_run = processed(log)

        second = await child(str(done_at_notice + 50))
        out2, err2 = await asyncio.wait_for(second.communicate(), timeout=30)
    resumed_from = int(out2.decode().split()[1])

    assert alive_at_deadline, (out, err)
    assert b"FINALLY" in out
    assert -signal.SIGKILL == first.returncode
    assert 0 == second.returncode, err2
    assert resumed_from >= done_at_notice - 1
    assert set(range(resumed_from)) <= set(first_run)
    assert f"OUTCOME completed {done_at_notice + 50}" in out2.decode()


async def test_the_provider_that_answers_is_the_one_watched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """With every provider named, the one whose service answers is watched; the others'
    failed probes leave no error behind."""
    caplog.set_level(logging.DEBUG, logger="resumable")
    async with GcpMetadata() as gcp:
        with BlackHole() as hole:
            endpoints = {"aws": closed_port(), "gcp": gcp.url, "azure": hole.url}

            @resumable(
                key="any",
                store=FileStore(tmp_path),
                interval=None,
                triggers=[PreemptionNotice(endpoints=endpoints)],
            )
            async def work(*, cursor: int = 0) -> AsyncIterator[int]:
                for i in range(cursor, 10**9):
                    await asyncio.sleep(0.001)
                    yield i + 1

            run = asyncio.ensure_future(work())
            await gcp.watched()
            gcp.preempt()
            outcome = await asyncio.wait_for(run, timeout=20)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    watching = [r.getMessage() for r in caplog.records if "watching for" in r.getMessage()]

    assert "aborted" == outcome.status
    assert ["job 'any': running on Google Cloud; watching for preemption notices"] == watching
    assert [] == errors


async def test_an_azure_event_is_not_approved_when_its_save_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Approving tells Azure to evict now: a notice whose save failed leaves the event alone."""
    caplog.set_level(logging.INFO, logger="resumable")

    class BrokenStore(FileStore):
        """Fails every attempt of the notice's save (seq 2, after the claim's 1); the run's
        last write (seq 3) lands, whenever it comes."""

        async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
            if json.loads(data)["seq"] == 2:
                raise OSError("disk gone")
            await super().save(key, data, guard=guard)

    def declined() -> bool:
        return any("not approving" in r.getMessage() for r in caplog.records)

    async with AzureMetadata() as azure:
        notice = PreemptionNotice(endpoints={"azure": azure.url}, poll_interval=0.02)

        @resumable(key="vm", store=BrokenStore(tmp_path), interval=None, triggers=[notice])
        async def work(*, cursor: int = 0) -> AsyncIterator[int]:
            for i in range(cursor, 10**9):
                await asyncio.sleep(0.001)
                yield i + 1

        run = asyncio.ensure_future(work())
        await azure.watched()
        azure.preempt(in_seconds=3)
        await wait_until(declined, timeout=20)
        outcome = await asyncio.wait_for(run, timeout=30)
        await wait_until(lambda: not other_tasks())

    assert "aborted" == outcome.status
    assert [] == azure.approved


async def test_a_gcp_long_poll_answers_on_change_and_at_its_timeout():
    """``wait_for_change`` waits on the server: it answers when the value flips, or with the
    same value when ``timeout_sec`` passes, and the watcher then asks again."""
    async with GcpMetadata() as gcp:
        watcher = Gcp(gcp.url, wait=1)
        await watcher.detect()
        unchanged = await watcher.poll()
        waiting = asyncio.ensure_future(watcher.poll())
        await gcp.watched(count=3)
        gcp.preempt()
        notice = await asyncio.wait_for(waiting, timeout=10)

    assert unchanged is None
    assert notice is not None
    assert ("Google Cloud", "preempted") == (notice.provider, notice.action)
