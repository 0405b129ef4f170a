"""Typed cursors: every supported type survives the trip to JSON and back through a job."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumable import CorruptStateError, CursorTypeError, MemoryStore, job, resumable
from resumable._codec import Codec, make_converter
from resumable._envelope import FORMAT_MARKER


class Phase(enum.Enum):
    LIST = "list"
    DETAIL = "detail"


@attrs.frozen
class Page:
    offset: int
    token: str | None


@dataclasses.dataclass(frozen=True)
class Window:
    start: datetime
    phase: Phase


@attrs.frozen
class Nested:
    pages: tuple[Page, ...]
    window: Window
    ids: tuple[uuid.UUID, ...]


aware = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]))
text = st.text(max_size=20)
page = st.builds(Page, offset=st.integers(0, 2**53), token=st.none() | text)
window = st.builds(Window, start=aware, phase=st.sampled_from(Phase))

CASES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, st.integers()),
    (str, text),
    (float, st.floats(allow_nan=False, allow_infinity=False)),
    (tuple[int, str], st.tuples(st.integers(), text)),
    (datetime, aware),
    (Phase, st.sampled_from(Phase)),
    (uuid.UUID, st.uuids()),
    (Page, page),
    (Window, window),
    (int | None, st.none() | st.integers()),
    (
        Nested,
        st.builds(
            Nested,
            pages=st.lists(page, max_size=3).map(tuple),
            window=window,
            ids=st.lists(st.uuids(), max_size=3).map(tuple),
        ),
    ),
    (dict[str, list[int]], st.dictionaries(text, st.lists(st.integers(), max_size=3), max_size=3)),
]


@pytest.mark.parametrize(("cursor_type", "values"), CASES, ids=lambda c: getattr(c, "__name__", ""))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cursor_type: Any, values: st.SearchStrategy[Any], data: st.DataObject):
    """cursor -> record bytes -> cursor gives back an equal cursor of the same type."""
    cursor = data.draw(values)
    codec: Codec[Any] = Codec("k", MemoryStore(), cursor_type, make_converter())

    record = codec.decode(codec.encode(cursor, status="running", seq=1, owner="me"))

    assert cursor == record.cursor
    assert type(cursor) is type(record.cursor)


async def test_a_typed_cursor_comes_back_typed_through_a_run():
    """The annotation of `cursor` is the type the next run receives."""
    store = MemoryStore()
    received: list[object] = []

    @resumable(key="typed", store=store, triggers=[])
    async def typed(*, cursor: Page = Page(0, None)) -> AsyncIterator[Page]:
        received.append(cursor)
        yield Page(cursor.offset + 10, f"t{cursor.offset + 10}")

    await typed()
    await typed()

    assert [Page(0, None), Page(10, "t10")] == received


async def test_the_record_is_readable_json_with_a_format_marker_and_version():
    """What lands in the store is plain JSON a later release can recognise."""
    store = MemoryStore()
    async with job("readable", cursor=Page(0, None), store=store, version=2, triggers=[]) as j:
        j.advance(Page(5, "abc"))
    envelope = json.loads(await store.load("readable") or b"")

    assert 1 == envelope[FORMAT_MARKER]
    assert 2 == envelope["version"]
    assert {"offset": 5, "token": "abc"} == envelope["cursor"]
    assert {
        "resumable",
        "key",
        "version",
        "status",
        "seq",
        "generation",
        "owner",
        "updated_at",
        "cursor",
    } == set(envelope)


async def test_an_unserializable_yield_fails_at_that_yield():
    """The first cursor that cannot become JSON fails the run with the type and key named."""
    store = MemoryStore()
    after: list[int] = []

    @resumable(key="bad-yield", store=store, triggers=[])
    async def bad(*, cursor: int = 0) -> AsyncIterator[Any]:
        yield {1, 2}
        after.append(1)

    with pytest.raises(CursorTypeError, match=r"'bad-yield' yielded \{1, 2\} \(set\)"):
        await bad()
    record = json.loads(await store.load("bad-yield") or b"")

    assert [] == after
    assert (0, "failed") == (record["cursor"], record["status"])


async def test_a_first_yield_of_the_wrong_type_fails_at_that_yield():
    """A value that would not come back as the annotated type is caught at the first yield."""

    @resumable(key="wrong-type", store=MemoryStore(), triggers=[])
    async def wrong(*, cursor: int = 0) -> AsyncIterator[Any]:
        yield "12x"

    with pytest.raises(CursorTypeError, match=r"yielded '12x' \(str\).*as the cursor type int"):
        await wrong()


async def test_a_later_unserializable_yield_fails_the_run_and_keeps_the_last_good_cursor():
    """A bad cursor found by the writer fails the run; the record keeps the last good one."""
    store = MemoryStore()

    @resumable(key="bad-later", store=store, every=1, interval=None, triggers=[])
    async def bad(*, cursor: Any = 0) -> AsyncIterator[Any]:
        yield 1
        yield 2
        yield object()
        yield 4

    with pytest.raises(CursorTypeError, match="'bad-later' yielded <object"):
        await bad()
    record = json.loads(await store.load("bad-later") or b"")

    assert (2, "failed") == (record["cursor"], record["status"])


async def test_a_stored_cursor_of_the_wrong_type_fails_at_start_with_the_value():
    """A stored cursor that does not fit the type is shown with the expected type."""
    store = MemoryStore()
    async with job("shape", cursor="abc", store=store, triggers=[]) as j:
        j.advance("not-a-number")

    with pytest.raises(CursorTypeError, match=r"'not-a-number'.*not a valid int"):
        async with job("shape", cursor=0, store=store, triggers=[]):
            pass


def test_a_custom_converter_is_used():
    """converter= teaches the codec a type the default converter cannot handle."""

    class Opaque:
        def __init__(self, value: int) -> None:
            self.value = value

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Opaque) and other.value == self.value

        __hash__ = None  # type: ignore[assignment]

    converter = cattrs.Converter()
    converter.register_unstructure_hook(Opaque, lambda o: o.value)
    converter.register_structure_hook(Opaque, lambda v, _: Opaque(v))
    codec: Codec[Opaque] = Codec("k", MemoryStore(), Opaque, converter)

    record = codec.decode(codec.encode(Opaque(3), status="running", seq=1, owner="me"))

    assert Opaque(3) == record.cursor


async def test_a_stored_record_that_is_not_strict_json_is_corrupt_and_kept() -> None:
    """A record holding NaN (Python's extension to JSON, never written by a run) is reported
    as corrupt where it lies, and left as it is, instead of failing later as a cursor."""
    store = MemoryStore()
    data = (
        b'{"resumable": 1, "key": "k", "version": 1, "status": "running", "seq": 2, '
        b'"owner": "x", "updated_at": "2026-01-01T00:00:00+00:00", "cursor": NaN}'
    )
    await store.save("k", data)

    with pytest.raises(CorruptStateError) as raised:
        async with job("k", 0.0, store=store, triggers=[], interval=None):
            pass

    assert "NaN is not a JSON value" in str(raised.value)
    assert data == await store.load("k")
