"""`Outbox`: where a job pushes its outputs, to be delivered with the cursor that covers them.

A push only checks the item and keeps its JSON text: no I/O. The engine marks, at each
cursor, how many of the items held belong to it (everything pushed before it), and a save
takes exactly those into the record before delivering them (`resumable._commit`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import cattrs
import orjson

from resumable._errors import CursorTypeError, FinishedJobError
from resumable._items import UnfitItemError, for_outputs, is_own

T = TypeVar("T")

ITEMS_PER_SAVE = 1000
"""The outbox asks for a save once it holds this many items ..."""

BYTES_PER_SAVE = 256 * 1024
"""... or this many bytes of JSON, whichever comes first (capped at a quarter of max_size)."""

# One encoder, built once: `json.dumps` with options builds a new encoder at every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


def _refuse(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The C encoder under `json`, called directly: the `JSONEncoder.encode` wrapper around it
# costs more than encoding a small item. No circular-reference markers: a cycle ends in a
# RecursionError, which the push reports like any other unstorable item.
_make_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Callable[[Any, int], Any] | None = None
if _make_c_encoder is not None:
    _C_ENCODE = _make_c_encoder(
        *(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    )


# orjson writes a plain item several times faster than `json`. These options leave what goes
# past plain JSON (dataclasses, datetimes, subclasses of str, int, dict and list) to the
# converter, by raising as `json` does: orjson would write them its own way.
_ORJSON = orjson.dumps
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def plain_text(item: Any) -> str | None:
    """Return the JSON text of a plain JSON value quickly, or ``None`` to take the long way.

    The long way (`encode_item`) is left for what orjson writes otherwise than `json`, or
    does not take: ``null`` (orjson writes NaN and infinities as ``null`` where `json`
    refuses them, so any item holding one is checked again), non-string dict keys, ints
    past 64 bits, lone surrogates, and anything that is not plain JSON. It writes enums and
    UUIDs as resumable's own converter does: call it for items of that converter only.
    """
    try:
        text: str = _ORJSON(item, None, _ORJSON_OPTIONS).decode()
    except TypeError:
        return None
    return None if "null" in text else text


def encode_json(value: Any) -> str:
    """Return the JSON text of a JSON value, in the one form records and outboxes use.

    Raises:
        TypeError: *value* holds something that is not a JSON value.
        ValueError: *value* holds NaN or an infinity.
    """
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(value, 0))
    return _ENCODER.encode(value)


def decode_json(texts: Sequence[str]) -> list[Any]:
    """Return the values of many JSON texts, parsed in one call."""
    return list(json.loads("[" + ",".join(texts) + "]")) if texts else []


def encode_item(item: Any, converter: cattrs.Converter) -> str:
    """Return the JSON text *item* is stored and delivered as (see `resumable._items`).

    Plain JSON values are encoded as they are; anything else (attrs classes, dataclasses,
    datetimes, or plain containers holding them) goes through *converter* first.

    Raises:
        Exception: Whatever the converter or the encoder raised: the item cannot be stored.
    """
    if type(item) in _PLAIN:
        try:
            text = encode_json(item)
        except TypeError:
            text = encode_json(converter.unstructure(item))
    else:
        text = encode_json(converter.unstructure(item))
    text.encode()  # a lone surrogate encodes to JSON but not to the UTF-8 a record is
    return text


class _Ended(list[str]):
    """The buffer of an outbox whose run has ended: it refuses every new item.

    Refusing here, where an item goes in, keeps the check off the push's hot path.
    """

    __slots__ = ("_key",)

    def __init__(self, texts: list[str], key: str) -> None:
        super().__init__(texts)
        self._key = key

    def append(self, text: str, /) -> None:
        raise self._refusal()

    def extend(self, texts: Iterable[str], /) -> None:
        raise self._refusal()

    def _refusal(self) -> FinishedJobError:
        return FinishedJobError(
            f"An output was pushed into the outbox of job {self._key!r}, whose run has ended: "
            "it would belong to no cursor and never reach the sink. Push while the run lasts "
            "(from the job's generator, or inside its `async with` block), and have work "
            "that outlives the run hand its outputs over before the run ends."
        )


class Outbox(Generic[T]):
    """What a job pushes its outputs into; they reach the sink exactly once.

    A job function gets it as its ``out`` keyword parameter (``j.out`` in the ``job``
    form). Items pushed before the job yields a cursor belong to that cursor: they are
    written into the record with it and delivered to the sink once that record has
    landed. Items pushed after the last cursor are delivered when the run completes and
    dropped when it fails or is aborted (the re-run pushes them again).

    Attributes:
        GIVEN: A default for the ``out`` parameter that keeps type checkers from asking
            callers for it (``out: Outbox[dict] = Outbox.GIVEN``); the run always passes
            its own outbox.
    """

    GIVEN: ClassVar[Any] = None

    __slots__ = (
        "_bytes",
        "_converter",
        "_dropped",
        "_for_outputs",
        "_frozen",
        "_limit_bytes",
        "_limit_items",
        "_marked",
        "_pushed",
        "_quick",
        "_texts",
        "_undelivered",
        "_wake",
    )

    def __init__(
        self,
        converter: cattrs.Converter,
        wake: Callable[[], None],
        *,
        items: int = ITEMS_PER_SAVE,
        size: int = BYTES_PER_SAVE,
    ) -> None:
        self._converter = converter
        self._for_outputs: cattrs.Converter | None = None  # made at the first item it takes
        self._quick = is_own(converter)  # whether `plain_text` writes items as it would
        self._wake = wake
        # Counts since the run began; each is written by one side only (pushed and marked by
        # the job, dropped by the writer), so no lock is needed even across threads.
        self._texts: list[str] = []
        self._pushed = 0
        self._marked = 0
        self._dropped = 0
        self._frozen: int | None = None
        self._bytes = 0
        self._undelivered = (0, 0)  # items and bytes in records that the sink lacks yet
        self._limit_bytes = size
        self._limit_items = items

    def __repr__(self) -> str:
        covered = self._marked - self._dropped
        return f"<Outbox holding {len(self._texts)} item(s), {covered} covered by a cursor>"

    def __len__(self) -> int:
        """How many pushed items have not been taken into a record yet."""
        return len(self._texts)

    def push(self, item: T) -> None:
        """Add *item* to the outputs. Never blocks on I/O.

        Raises:
            CursorTypeError: The item cannot be turned into JSON by the job's converter.
        """
        # `_text` inline, the quick way first: this is the hot path.
        if not (self._quick and type(item) in _PLAIN and (text := plain_text(item))):
            text = self._encode(item)
        texts = self._texts
        texts.append(text)
        self._pushed += 1
        size = self._bytes = self._bytes + len(text)
        if size >= self._limit_bytes or len(texts) >= self._limit_items:
            self._wake()

    def extend(self, items: Iterable[T]) -> None:
        """Add every item of *items*, in order; if one cannot be stored, none is added.

        Raises:
            CursorTypeError: An item cannot be turned into JSON by the job's converter.
        """
        texts = [self._text(item) for item in items]
        self._texts.extend(texts)
        self._pushed += len(texts)
        self._bytes += sum(map(len, texts))
        if self._bytes >= self._limit_bytes or len(self._texts) >= self._limit_items:
            self._wake()

    def _text(self, item: object) -> str:
        """The JSON text *item* is stored as; the quick way when it is plain JSON."""
        if self._quick and type(item) in _PLAIN and (text := plain_text(item)) is not None:
            return text
        return self._encode(item)

    def _encode(self, item: object) -> str:
        if self._for_outputs is None:
            self._for_outputs = for_outputs(self._converter)
        try:
            return encode_item(item, self._for_outputs)
        except UnfitItemError as exc:
            reason = f"{exc}."
        except Exception as exc:  # noqa: BLE001 - whatever it is, the item cannot be stored
            reason = (
                f"{type(exc).__name__}: {exc}. Push values that the job's cattrs converter "
                "turns into JSON (dicts and lists of JSON values, attrs classes, dataclasses, "
                "datetimes; no NaN or infinity), or pass a converter that knows the type with "
                "converter=."
            )
        raise CursorTypeError(
            f"The outbox cannot store {item!r} ({type(item).__name__}): {reason}"
        ) from None

    # -- for the engine ---------------------------------------------------------------

    def close(self, key: str) -> None:
        """The run of job *key* has ended: from now on a push raises `FinishedJobError`."""
        self._texts = _Ended(self._texts, key)

    def limit(self, max_size: int) -> None:
        """Keep a batch far below the record's *max_size*."""
        self._limit_bytes = min(self._limit_bytes, max(1, max_size // 4))

    def undelivered(self, items: int, size: int) -> None:
        """Records hold *items* outputs (*size* bytes of JSON) that the sink does not yet.

        They count toward the bound (`full`), and while they make a bound themselves
        (`behind`) routine saves take no more: a sink that is slow or down holds the job
        back, and a stop's record, which takes them and the outbox's items together, stays
        under ``max_size``.
        """
        self._undelivered = (items, size)

    @property
    def behind(self) -> bool:
        """Whether records hold at least a bound of outputs that the sink does not yet."""
        items, size = self._undelivered
        return size >= self._limit_bytes or items >= self._limit_items

    @property
    def full(self) -> bool:
        """Whether the outbox, with what is undelivered, holds twice its bound: the job must
        wait for a save."""
        items, size = self._undelivered
        return (
            self._bytes + size >= 2 * self._limit_bytes
            or len(self._texts) + items >= 2 * self._limit_items
        )

    def mark(self) -> None:
        """Note that a cursor was reached: everything held so far belongs to it."""
        self._marked = self._pushed

    def freeze(self) -> None:
        """The work was cut: no item pushed from now on belongs to a persisted cursor."""
        if self._frozen is None:
            self._frozen = self._marked

    def covered(self, *, everything: bool) -> int:
        """How many of the items held a save now takes (all of them when the run completed)."""
        if self._frozen is not None:
            return self._frozen - self._dropped
        return (self._pushed if everything else self._marked) - self._dropped

    def peek(self, count: int) -> list[str]:
        """The JSON texts of the first *count* items held."""
        return self._texts[:count]

    def drop(self, count: int) -> None:
        """Forget the first *count* items: a record that landed holds them now."""
        taken = self._texts[:count]
        del self._texts[:count]
        self._dropped += count
        self._bytes -= sum(map(len, taken))
