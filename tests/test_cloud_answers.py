"""Metadata services that answer nonsense: the preemption watch logs it and asks again.

Whatever a metadata service answers (a truncated or over-long HTTP message, a status code
that is no number, a document whose fields have other types than documented), reading it
either gives a notice, gives none, or fails with an `OSError` that the watch retries at the
provider's cadence; and a real notice that comes after any of it is acted on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable import MemoryStore, job
from resumable.cloud import Notice, PreemptionNotice
from resumable.cloud._aws import Aws
from resumable.cloud._azure import Azure
from resumable.cloud._gcp import Gcp
from resumable.cloud._trigger import _next_notice
from resumable.testing import AzureMetadata

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
"""Any JSON value, to put where a document has a field of its own type."""


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field as documented, or any JSON value instead."""
    return st.one_of(valid, JSON)


WHEN = st.sampled_from(["", "Mon, 19 Sep 2016 18:29:47 GMT", "Mon, 99 Foo 2016", "2026-01-01"])
DOCUMENTS = {
    "aws": st.fixed_dictionaries(
        {
            "action": either(st.sampled_from(["terminate", "stop", "hibernate"])),
            "time": either(st.sampled_from(["2026-01-01T00:00:00Z", "2026-13-01", "soon"])),
        }
    ),
    "azure": st.fixed_dictionaries(
        {
            "DocumentIncarnation": either(st.integers(0, 9)),
            "Events": either(
                st.lists(
                    either(
                        st.fixed_dictionaries(
                            {
                                "EventId": either(st.uuids().map(str)),
                                "EventType": either(st.sampled_from(["Preempt", "Terminate"])),
                                "Resources": either(st.lists(st.sampled_from(["vm", "other"]))),
                                "NotBefore": either(WHEN),
                            }
                        )
                    ),
                    max_size=3,
                )
            ),
        }
    ),
    "gcp": st.sampled_from(["TRUE", "FALSE", "true", ""]) | JSON,
}


@st.composite
def answers(draw: st.DrawFn, provider: str) -> bytes:
    """An HTTP answer: well formed around a malformed document, or malformed itself."""
    document = draw(DOCUMENTS[provider])
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    status = draw(st.sampled_from([b"200", b"200", b"404", b"500", b"\xb200", b"20", b"abc"]))
    framing = draw(st.sampled_from(["length", "wrong length", "chunked", "bad chunk", "none"]))
    if framing == "length":
        head = b"Content-Length: %d\r\n" % len(body)
    elif framing == "wrong length":
        head = b"Content-Length: %d\r\n" % draw(st.integers(-5, len(body) + 50))
    elif framing == "chunked":
        head, body = b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    elif framing == "bad chunk":
        size = draw(st.sampled_from([b"zz", b"1" * 70_000, b"-1", b""]))
        head, body = b"Transfer-Encoding: chunked\r\n", size + b"\r\n" + body
    else:
        head = b""
    flavor = b"Metadata-Flavor: Google\r\n" if provider == "gcp" else b""
    answer = b"HTTP/1.1 " + status + b" Whatever\r\n" + flavor + head + b"\r\n" + body
    return draw(st.one_of(st.just(answer), st.binary(max_size=200), st.just(answer[:-3])))


async def ask_once(provider: str, answer: bytes) -> Notice | None:
    """Serve *answer* to one poll of *provider*'s watcher (a valid session token for AWS)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"PUT "):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntoken")
        else:
            writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    watcher = {"aws": Aws(url), "azure": Azure(url), "gcp": Gcp(url, wait=1)}[provider]
    try:
        return await watcher.poll()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("provider", sorted(DOCUMENTS))
def test_any_answer_is_a_notice_no_notice_or_an_oserror(provider: str) -> None:
    """Reading an answer of any shape never raises anything but an `OSError`, the failure
    the watch retries; a notice read from one has a timezone-aware deadline."""

    @settings(max_examples=150, deadline=None)
    @given(answer=answers(provider))
    def check(answer: bytes) -> None:
        try:
            notice = asyncio.run(ask_once(provider, answer))
        except OSError:
            return
        if notice is not None:
            assert notice.deadline.tzinfo is not None
            assert isinstance(notice.action, str)
            assert notice.event_id is None or isinstance(notice.event_id, str)

    logging.disable(logging.WARNING)  # the ignored events say so, by design
    try:
        check()
    finally:
        logging.disable(logging.NOTSET)


class Answers(AzureMetadata):
    """Azure's stand-in whose events document is *document* at the second poll."""

    def __init__(self, document: object) -> None:
        super().__init__()
        self.document = document

    async def respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        reply = await super().respond(method, target, headers, body)
        if method == "GET" and "scheduledevents" in target and self.watches == 2:
            raw = self.document if isinstance(self.document, bytes) else None
            return 200, {}, raw or json.dumps(self.document).encode()
        return reply


def preempt_event(event_id: str, **fields: object) -> dict[str, object]:
    """A scheduled Preempt event for the stand-in's VM, with *fields* replaced."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    event = {"EventId": event_id, "EventType": "Preempt", "Resources": ["standin-vm"]}
    return {**event, "NotBefore": when, **fields}


MALFORMED = {
    "Resources a number": {"Events": [preempt_event("E1", Resources=7)]},
    "Resources a string": {"Events": [preempt_event("E1", Resources="standin-vm-2")]},
    "EventId a list": {"Events": [preempt_event("E1", EventId=["E1"])]},
    "NotBefore a number": {"Events": [preempt_event("E1", NotBefore=3)]},
    "NotBefore no date": {"Events": [preempt_event("E1", NotBefore="Mon, 99 Foo")]},
    "an event not an object": {"Events": ["E1"]},
    "Events a string": {"Events": "E1"},
    "not JSON": b"{'Events': [",
}


@pytest.mark.parametrize("document", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_notice_after_a_malformed_document_is_acted_on(document: object) -> None:
    """One malformed events document (fields of other types, not JSON) is logged and the
    watch goes on: the Preempt notice that follows aborts the job."""
    async with Answers(document) as azure:
        notice = PreemptionNotice(endpoints={"azure": azure.url}, poll_interval=0.02)
        async with job("spot", 0, store=MemoryStore(), triggers=[notice], interval=None) as j:
            await azure.watched(count=3)
            azure.preempt(in_seconds=40)
            async with asyncio.timeout(20):
                while not j.stopping:
                    j.advance(j.cursor + 1)
                    await asyncio.sleep(0.01)

    assert j.outcome is not None
    assert "aborted" == j.outcome.status


async def test_a_malformed_event_beside_a_notice_does_not_hide_it() -> None:
    """An event that cannot be read is skipped, not the document: the valid Preempt beside
    it is the notice."""
    document = {"Events": [preempt_event("bad", Resources=7), preempt_event("good")]}
    async with Answers(document) as azure:
        watcher = Azure(azure.url)
        await watcher.detect()
        first = await watcher.poll()  # the stand-in's own document: no events
        second = await watcher.poll()

    assert first is None
    assert second is not None
    assert "good" == second.event_id


class Unexpected:
    """A provider whose first poll fails with an error that is not an `OSError`."""

    name = "Somewhere"
    url = "http://127.0.0.1:9"
    interval = 0.0

    def __init__(self) -> None:
        self.polls = 0

    async def detect(self) -> None:
        pass

    async def poll(self) -> Notice | None:
        self.polls += 1
        if self.polls == 1:
            raise ValueError("a document nobody foresaw")
        return Notice(self.name, "terminate", datetime.now(UTC))

    async def acknowledge(self, notice: Notice) -> None:
        pass


async def test_an_unforeseen_error_is_logged_and_the_watch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even an error no provider raises on purpose does not end the watch: it is logged
    with its traceback, and the poll is tried again at the provider's cadence."""
    provider = Unexpected()
    with caplog.at_level(logging.WARNING, logger="resumable.cloud"):
        notice = await asyncio.wait_for(_next_notice(provider, "k", set()), timeout=20)

    assert "terminate" == notice.action
    assert 2 == provider.polls
    assert "ValueError: a document nobody foresaw" in caplog.text
    assert any(record.exc_info for record in caplog.records)
