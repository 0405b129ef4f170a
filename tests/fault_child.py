"""Child process of tests/test_faults.py: FileStore writes that die, and runs that race.

``python fault_child.py crash DIRECTORY KILL_AT [torn]``
    Resume job ``k`` from DIRECTORY, advance it by one and save. From that save on, every
    file-system step (``os.open``, ``os.write``, ``os.fsync``, ``os.close``, ``os.replace``)
    is counted; just before step KILL_AT the process SIGKILLs itself (with ``torn``, a write
    step first writes half its bytes). KILL_AT -1 kills nothing and prints the steps as JSON.

``python fault_child.py race-first DIRECTORY``
    Run job ``k`` and save after each cursor, printing ``saved N``. Its fourth save stops
    between taking the key's lock and writing (printing ``window``) until DIRECTORY/../go
    exists, then holds on a little longer, so a second process tries to take the key over
    right then. Once the other process owns the key (or gave up), it saves again, which must
    fail: exits 3 printing ``stale`` if it does, 0 printing ``overwrote`` if it does not.

``python fault_child.py race-second DIRECTORY``
    Create DIRECTORY/../go, take job ``k`` over (printing ``claimed N OWNER``), advance it
    by 10, save, and finish; then create DIRECTORY/../done.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from resumable import FileStore, StaleWriterError, job

KEY = "k"
_STEPS = ("open", "write", "fsync", "close", "replace")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def instrument(kill_at: int, *, torn: bool) -> list[str]:
    """Count file-system steps from now on; SIGKILL the process before step *kill_at*."""
    trace: list[str] = []
    paths: dict[int, str] = {}
    real = {name: getattr(os, name) for name in _STEPS}

    def step(name: str, detail: str) -> None:
        if len(trace) == kill_at and name != "write":
            _die()
        trace.append(f"{name} {detail}")

    def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        step("open", Path(path).name)
        fd: int = real["open"](path, flags, mode, **kwargs)
        paths[fd] = Path(path).name
        return fd

    def write(fd: int, data: Any) -> int:
        if len(trace) == kill_at:
            if torn:
                real["write"](fd, bytes(data)[: len(data) // 2])
            _die()
        trace.append(f"write {paths.get(fd, fd)}")
        written: int = real["write"](fd, data)
        return written

    def fsync(fd: int) -> None:
        step("fsync", paths.get(fd, str(fd)))
        real["fsync"](fd)

    def close(fd: int) -> None:
        step("close", paths.get(fd, str(fd)))
        real["close"](fd)

    def replace(source: Any, target: Any, **kwargs: Any) -> None:
        step("replace", f"{Path(source).name} {Path(target).name}")
        real["replace"](source, target, **kwargs)

    os.open = open_
    os.write = write
    os.fsync = fsync  # type: ignore[assignment]
    os.close = close
    os.replace = replace  # type: ignore[assignment]
    return trace


async def crash(directory: Path, kill_at: int, *, torn: bool) -> None:
    """Save one more cursor of job ``k``, dying at step *kill_at* of the save."""
    async with job(KEY, cursor=0, store=FileStore(directory), triggers=[], interval=None) as j:
        j.advance(j.cursor + 1)
        trace = instrument(kill_at, torn=torn)
        await j.save()
        if kill_at >= 0:
            _die()
        print(json.dumps(trace), flush=True)
        os._exit(0)


async def race_first(directory: Path) -> int:
    """Own the key, then save once inside a widened window, then save again."""
    go = directory.parent / "go"
    real_open = os.open

    def slow_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if str(path).endswith(".json.tmp"):
            print("window", flush=True)
            deadline = time.monotonic() + 30
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            # The other run now tries to take the key over; give it time to get to the
            # store. With the lock, it waits for us; without, it writes under our feet.
            time.sleep(0.3)
        fd: int = real_open(path, flags, mode, **kwargs)
        return fd

    store = FileStore(directory)
    try:
        async with job(KEY, cursor=0, store=store, triggers=[], interval=None) as j:
            for i in range(1, 4):
                j.advance(i)
                await j.save()
                print(f"saved {i}", flush=True)
            os.open = slow_open
            j.advance(4)
            await j.save()
            os.open = real_open
            print("saved 4", flush=True)
            await wait_for_takeover(store.path(KEY), j._writer.owner, directory.parent / "done")
            j.advance(5)
            await j.save()
            print("overwrote", flush=True)
    except StaleWriterError:
        print("stale", flush=True)
        return 3
    return 0


async def wait_for_takeover(path: Path, owner: str, done: Path) -> None:
    """Poll until another run owns the record at *path*, or has finished trying."""
    deadline = time.monotonic() + 30
    while json.loads(path.read_bytes())["owner"] == owner and not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("nobody took the key over")
        await asyncio.sleep(0.01)


async def race_second(directory: Path) -> int:
    """Take the key over from a run that is still going, and make progress."""
    (directory.parent / "go").touch()
    store = FileStore(directory)
    try:
        async with job(KEY, cursor=0, store=store, triggers=[], interval=None) as j:
            print(f"claimed {j.cursor} {j._writer.owner}", flush=True)
            j.advance(j.cursor + 10)
            await j.save()
            print(f"saved {j.cursor}", flush=True)
    finally:
        (directory.parent / "done").touch()
    return 0


def main(argv: list[str]) -> int:
    """Run the mode named by *argv*."""
    mode, directory = argv[0], Path(argv[1])
    if mode == "crash":
        asyncio.run(crash(directory, int(argv[2]), torn=argv[3:] == ["torn"]))
        return 0
    if mode == "race-first":
        return asyncio.run(race_first(directory))
    return asyncio.run(race_second(directory))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
