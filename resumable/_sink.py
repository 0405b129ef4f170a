"""Sinks: where a job's outputs are delivered. The `Sink` protocol and `JsonLinesSink`.

A sink is an append-only sequence of JSON values that the engine can read back. Positions
count items from 0. The engine records how many items the sink held when it last delivered,
and checks, from the items themselves, how much of its pending batch the sink already holds
on every resume and before it appends again after an append whose outcome it does not know,
so that a delivery cut short or whose reply was lost is completed without duplicating one
item.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from resumable._errors import ResumableError, StaleWriterError
from resumable._outbox import encode_json
from resumable._stores._files import fsync_directory

_CHUNK = 1 << 20  # bytes read at a time when counting lines


@runtime_checkable
class Sink(Protocol):
    """The protocol an output destination implements.

    Items are JSON values (what ``json.loads`` returns). Only one job writes a sink.

    What exactly-once needs of it: `read` sees every item an append stored, as soon as the
    append has returned or raised (no lag), and an append stores its items in order, all of
    them, the first few, or none. Then an append whose outcome is unknown (it raised, timed
    out, or was cut off: the reply may be lost) is settled by reading the sink back, never
    repeated blindly. A sink that also checks *start* atomically is safe even from an append
    that lands after the engine gave up on it. A sink whose `read` lags may get a batch
    twice; one whose `read` fails keeps its outputs pending (in the record) until it can be
    read again; one that stores items out of order is reported as written by something
    else. Failures are retried within the save's deadline, then raised as `SinkError`.

    A sink that writes JSON text may also define ``append_json(texts, start)``, which the
    engine then calls instead of `append`, with the items as the JSON texts the record holds
    them as (one line each, with no newline in any): it spares parsing them only for the
    sink to write them again. `JsonLinesSink` does. A subclass that overrides `append` alone
    gets `append` called (`json_appender`).
    """

    async def count(self) -> int:
        """Return how many items the sink holds."""
        ...

    async def read(self, start: int, limit: int) -> Sequence[Any]:
        """Return up to *limit* items from position *start* on, in order (fewer at the end)."""
        ...

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Add *items* at the end, in order, durably before returning.

        *start* is the position the first item takes, i.e. how many items the sink should
        hold before the append. A sink that can check it atomically raises
        `StaleWriterError` when it holds another number, and appends nothing; the engine
        then reads what the sink holds and delivers only what is missing. Raise whatever
        the destination raises when it fails, even after it may have stored the items: the
        engine reads back before it appends again.
        """
        ...


@runtime_checkable
class AppendsJson(Protocol):
    """A sink that takes items as JSON texts too (see `Sink`); `JsonLinesSink` is one."""

    async def append_json(self, texts: Sequence[str], start: int) -> None:
        """`Sink.append` for items given as the JSON texts the record holds, one a line."""
        ...


def json_appender(sink: Sink) -> Callable[[Sequence[str], int], Awaitable[None]] | None:
    """The sink's ``append_json``, or ``None`` when it has none that speaks for its `append`.

    One inherited from a class above the one that overrides `append` does not: the override
    (a subclass of `JsonLinesSink` that changes what an append does) must see every append.
    """
    if not isinstance(sink, AppendsJson):
        return None
    mro = type(sink).__mro__
    owner = next((cls for cls in mro if "append" in vars(cls)), None)
    texts_owner = next((cls for cls in mro if "append_json" in vars(cls)), None)
    if owner is not None and texts_owner is not None and not issubclass(texts_owner, owner):
        return None
    return sink.append_json


class JsonLinesSink:
    """One JSON document a line in a local file, appended and fsynced.

    Crash-safe: a line cut short by a crash is not counted, and the next append cuts it off.
    Appends hold an exclusive ``flock`` on the file and check the position under it, so two
    processes never both deliver a batch.

    Args:
        path: The file (created with its directory when missing).
        fsync: Make every append durable before it returns (turn off only in tests).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._known: tuple[int, int] | None = None  # (bytes of complete lines, lines) last seen

    def __repr__(self) -> str:
        return f"JsonLinesSink({str(self.path)!r})"

    async def count(self) -> int:
        """Return the number of complete lines in the file."""
        return await asyncio.to_thread(self._count)

    async def read(self, start: int, limit: int) -> list[Any]:
        """Return the items of up to *limit* complete lines from line *start* on."""
        return await asyncio.to_thread(self._read, start, limit)

    async def append(self, items: Sequence[Any], start: int) -> None:
        """Append *items*, one line each, if the file holds *start* complete lines.

        Raises:
            StaleWriterError: The file holds another number of lines; nothing was written.
        """
        await self.append_json([encode_json(item) for item in items], start)

    async def append_json(self, texts: Sequence[str], start: int) -> None:
        """`append` for items given as their JSON texts, one line each: written as they are.

        Raises:
            StaleWriterError: The file holds another number of lines; nothing was written.
        """
        payload = "".join([text + "\n" for text in texts])
        await asyncio.to_thread(self._append, payload.encode(), len(texts), start)

    def _scan(self, fd: int) -> tuple[int, int]:
        """The end of the last complete line and the number of lines, read in chunks."""
        end = lines = offset = 0
        while chunk := os.pread(fd, _CHUNK, offset):
            newlines = chunk.count(b"\n")
            if newlines:
                lines += newlines
                end = offset + chunk.rfind(b"\n") + 1
            offset += len(chunk)
        return end, lines

    def _count(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            return self._scan(fd)[1]
        finally:
            os.close(fd)

    def _read(self, start: int, limit: int) -> list[Any]:
        items: list[Any] = []
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return items
        with file:
            for number, line in enumerate(file, 1):
                if number <= start:
                    continue
                if len(items) >= limit or not line.endswith(b"\n"):
                    break  # enough, or a line torn by a crash: not an item
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ResumableError(
                        f"Line {number} of {self.path} is not JSON ({exc}): the file was "
                        "written by something else. Give the job a file of its own."
                    ) from exc
        return items

    def _append(self, payload: bytes, count: int, start: int) -> None:
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if self._known is not None and self._known[0] == size:
                end, lines = self._known
            else:
                end, lines = self._scan(fd)
            if lines != start:
                self._known = None
                raise StaleWriterError(
                    f"{self!r} holds {lines} line(s), not the {start} expected: another "
                    "process wrote it. Nothing was appended."
                )
            if end != size:
                os.ftruncate(fd, end)  # the torn last line of an append that a crash cut short
            view = memoryview(payload)
            offset = end
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            if self._fsync:
                os.fsync(fd)
            self._known = (offset, lines + count)
        finally:
            os.close(fd)
        if created and self._fsync:
            fsync_directory(self.path.parent)
