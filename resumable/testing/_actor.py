"""`ActorProcess`: run an unmodified Actor in a child process against the stand-in platform.

The child is started as ``python -m resumable.testing._launch`` with the Actor's module or
path: the launcher prepares the SDK for the stand-in and then runs the Actor exactly as
``python -m my_actor`` (or ``python main.py``) would, so the Actor carries no test code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

from resumable._closing import AsyncClosing
from resumable.testing._platform import PlatformEvents

__all__ = ["ActorProcess"]

T = TypeVar("T")

_LAUNCHER = "resumable.testing._launch"
_LOG_TAIL = 4000
_POLL = 0.005


class ActorProcess(AsyncClosing):
    """An Actor in a child process, on local storage, with the platform's events at hand.

    Starts your Actor, unmodified, with the real Apify SDK, against `PlatformEvents` (the
    stand-in of the platform's events websocket on 127.0.0.1), its storages on the local
    disk in *directory*. The test sends it ``migrating``, ``aborting`` or ``persistState``,
    kills it with SIGKILL as the platform would, starts it again on the same storage, and
    reads its default dataset and key-value store::

        async with ActorProcess("my_actor", input={"items": 40}) as actor:
            await actor.start()
            await actor.until(lambda: len(actor.dataset()) >= 10, what="10 items")
            await actor.migrate()
            await actor.until_logged("waiting for the platform to stop this process")
            await actor.kill()
            await actor.start()
            assert 0 == await actor.wait()

    The pytest plugin offers it as the ``actor_process`` fixture (a factory taking the same
    arguments, on the test's ``platform_events`` and ``tmp_path``).

    Args:
        target: The Actor: a module name, run as ``python -m target``, or the path of a
            script (a `Path`, or a string ending in ``.py``), run as ``python target``.
        *args: Command-line arguments for every run (`start` can add more).
        input: The Actor's input, written as ``INPUT.json`` into its default key-value
            store before the first run (``Actor.get_input()`` returns it).
        directory: Where the Actor's storage (``directory/storage``, its
            ``CRAWLEE_STORAGE_DIR``) and each run's output go; a temporary directory,
            removed by `aclose`, when not given.
        platform: The stand-in to connect to; when not given, ``async with`` starts one.
        at_home: Run the SDK as on the platform (``Actor.is_at_home()`` is true), with its
            storages kept local; ``False`` runs it as a local run that still gets events.
        env: Environment variables for every run, on top of this process's own.
        cwd: The runs' working directory (the current one by default); a module target is
            imported from there, as with ``python -m``.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *args: str,
        input: Any = None,  # noqa: A002 - the Actor's word for it
        directory: str | os.PathLike[str] | None = None,
        platform: PlatformEvents | None = None,
        at_home: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(target, os.PathLike) or str(target).endswith(".py"):
            self._target = [str(Path(target).resolve())]
        else:
            self._target = ["-m", str(target)]
        self.target = str(target)
        self.args = args
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="resumable-actor-")
            directory = self._temporary.name
        self.directory = Path(directory)
        self.storage_dir = self.directory / "storage"
        self.platform = platform
        self._own_platform: PlatformEvents | None = None
        self.at_home = at_home
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.runs = 0
        self.process: asyncio.subprocess.Process | None = None
        if input is not None:
            default = self.storage_dir / "key_value_stores" / "default"
            default.mkdir(parents=True, exist_ok=True)
            (default / "INPUT.json").write_text(json.dumps(input))

    def __repr__(self) -> str:
        state = "running" if self.running else "not running"
        return f"ActorProcess({self.target!r}, run {self.runs}, {state})"

    async def __aenter__(self) -> Self:
        if self.platform is None:
            self._own_platform = PlatformEvents()
            self.platform = await self._own_platform.__aenter__()
        return self

    async def aclose(self) -> None:
        """Kill the run if it is still going; stop the stand-in and remove the directory if ours."""
        await self.kill()
        if self._own_platform is not None:
            await self._own_platform.__aexit__(None, None, None)
            self._own_platform = self.platform = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    @property
    def running(self) -> bool:
        """Whether the current run's process is alive."""
        return self.process is not None and self.process.returncode is None

    async def start(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> None:
        """Start a run on the same storage and wait until its SDK has connected to the stand-in.

        Args:
            *args: More command-line arguments for this run, after the constructor's.
            env: More environment variables for this run.
            timeout: Seconds the Actor may take to enter ``async with Actor:``.

        Raises:
            AssertionError: The run exited, or did not connect within *timeout*; the
                message holds the end of its log.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is still running: kill() or wait() for it first.")
        platform = self.platform
        if platform is None:
            raise RuntimeError(
                f"{self!r} has no stand-in platform: use it as `async with ActorProcess(...)`, "
                "or pass platform=."
            )
        self.runs += 1
        expected = platform.connections + 1
        environment = (
            os.environ
            | platform.env(self.storage_dir, at_home=self.at_home)
            | self.env
            | dict(env or {})
        )
        with self._output_path("out").open("wb") as out, self._output_path("err").open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                _LAUNCHER,
                *self._target,
                *self.args,
                *args,
                cwd=self.cwd,
                env=environment,
                stdout=out,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
            )
        connected = asyncio.ensure_future(platform.connected(timeout, count=expected))
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (connected, exited):
                task.cancel()
            await asyncio.gather(connected, exited, return_exceptions=True)
        if connected.cancelled() or connected.exception() is not None:
            why = (
                f"exited with code {self.process.returncode}"
                if self.process.returncode is not None
                else f"did not connect to the stand-in within {timeout} s"
            )
            await self.kill()
            raise AssertionError(
                f"{self!r}: run {self.runs} {why}. Does it enter `async with Actor:`? Its log:\n"
                + self._tail()
            )

    async def send(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send the platform event *name* (with *data*) to the running Actor."""
        if not self.running or self.platform is None:
            raise RuntimeError(f"{self!r}: there is no run to send {name!r} to; start() it.")
        await self.platform.send(name, data)

    async def migrate(self, time_remaining: float = 20.0) -> None:
        """Send ``migrating``, with *time_remaining* seconds before the platform kills it."""
        await self.send("migrating", {"timeRemainingSecs": time_remaining})

    async def abort(self) -> None:
        """Send ``aborting``, as a graceful abort from the console does."""
        await self.send("aborting")

    async def persist_state(self) -> None:
        """Send ``persistState``, as the platform does once a minute."""
        await self.send("persistState", {"isMigrating": False})

    def send_signal(self, signum: int) -> None:
        """Send the current run a signal: SIGTERM as ``docker stop`` does, SIGINT as Ctrl-C."""
        if not self.running or self.process is None:
            raise RuntimeError(f"{self!r}: there is no run to signal; start() it.")
        self.process.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL the current run, as the platform ends a migrated container; wait for it."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def wait(self, timeout: float = 60.0) -> int:
        """Wait for the current run to exit on its own; return its exit code.

        Raises:
            AssertionError: It did not exit within *timeout* seconds (it is killed; the
                message holds the end of its log).
        """
        if self.process is None:
            raise RuntimeError(f"{self!r} was never started.")
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"{self!r}: run {self.runs} did not end within {timeout} s; its log:\n"
                + self._tail()
            ) from None

    def log(self, run: int | None = None) -> str:
        """What a run (the current one by default) wrote to stderr: the Actor's log."""
        return self._read("err", run)

    def output(self, run: int | None = None) -> str:
        """What a run (the current one by default) wrote to stdout (``print``)."""
        return self._read("out", run)

    def dataset(self, name: str | None = None) -> list[Any]:
        """Return the items of the Actor's default (or named) dataset, in the order pushed."""
        directory = self.storage_dir / "datasets" / (name or "default")
        if not directory.is_dir():
            return []
        files = sorted(p for p in directory.glob("*.json") if not p.name.startswith("__"))
        return [json.loads(p.read_bytes()) for p in files]

    def value(self, key: str, *, store: str | None = None) -> Any:
        """Return the record *key* of the default (or named) key-value store, or ``None``.

        JSON records come back parsed (a job's state is a dict with ``cursor`` and
        ``status``), text records as `str`, anything else as `bytes`.
        """
        directory = self.storage_dir / "key_value_stores" / (store or "default")
        name = urllib.parse.quote(key, safe="")
        try:
            data = (directory / name).read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads((directory / f"{name}.__metadata__.json").read_bytes())
            content_type = str(meta.get("content_type", ""))
        except (FileNotFoundError, ValueError):
            content_type = ""  # a record written a moment ago, its metadata not yet
        if content_type.startswith("text/"):
            return data.decode()
        if content_type.startswith("application/json") or not content_type:
            with contextlib.suppress(ValueError):
                return json.loads(data)
        return data

    async def until(
        self, check: Callable[[], T], *, timeout: float = 30.0, what: str | None = None
    ) -> T:
        """Poll *check* until it returns something truthy, and return that.

        Raises:
            AssertionError: Not within *timeout* seconds, or the run exited first; the
                message names *what* was awaited and holds the end of the run's log.
        """
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.running
            value = check()
            if value:
                return value
            waited = what or getattr(check, "__name__", "the condition")
            if exited:
                raise AssertionError(
                    f"{self!r}: the run ended before {waited}; its log:\n" + self._tail()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self!r}: {waited} not within {timeout} s; its log:\n" + self._tail()
                )
            await asyncio.sleep(_POLL)

    async def until_logged(self, text: str, *, timeout: float = 30.0) -> None:
        """Wait until the current run's log (or output) contains *text*."""
        await self.until(
            lambda: text in self.log() or text in self.output(),
            timeout=timeout,
            what=f"the log line {text!r}",
        )

    def _output_path(self, stream: str, run: int | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"run{run or self.runs}.{stream}"

    def _read(self, stream: str, run: int | None) -> str:
        try:
            return self._output_path(stream, run).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _tail(self) -> str:
        text = self.log() + self.output()
        return text[-_LOG_TAIL:] or "(nothing)"
