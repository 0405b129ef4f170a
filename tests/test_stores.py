"""The store contract, once for every store; then what only FileStore and the shared stores
promise."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.exceptions
from servers import PostgresServer, RedisServer, free_port

from conftest import unique_table
from resumable import FileStore, InvalidKeyError, Store, job
from resumable.redis import RedisStore
from resumable.sql import SQLStore


async def test_a_missing_key_loads_as_none(any_store: Store):
    """Nothing saved, nothing loaded."""
    assert await any_store.load("nothing-here") is None


async def test_save_then_load_gives_the_same_bytes(any_store: Store):
    """A record comes back exactly as it was saved; a second save replaces it whole."""
    await any_store.save("k", b'{"resumable":1,"a":1}')
    await any_store.save("k", b'{"resumable":1,"b":2}')

    assert b'{"resumable":1,"b":2}' == await any_store.load("k")


async def test_the_guard_sees_the_current_record_and_can_veto(any_store: Store):
    """save() shows the guard the current bytes; when it raises, nothing is written."""
    seen: list[bytes | None] = []

    def record_and_allow(current: bytes | None) -> None:
        seen.append(current)

    def refuse(current: bytes | None) -> None:
        raise LookupError("no")

    await any_store.save("k", b'{"resumable":1,"v":1}', guard=record_and_allow)
    await any_store.save("k", b'{"resumable":1,"v":2}', guard=record_and_allow)
    with pytest.raises(LookupError):
        await any_store.save("k", b'{"resumable":1,"v":3}', guard=refuse)

    assert [None, b'{"resumable":1,"v":1}'] == seen
    assert b'{"resumable":1,"v":2}' == await any_store.load("k")


async def test_delete_forgets_and_tolerates_missing_keys(any_store: Store):
    """delete() removes the record; deleting again is not an error."""
    await any_store.save("k", b'{"resumable":1}')
    await any_store.delete("k")
    await any_store.delete("k")

    assert await any_store.load("k") is None


async def test_keys_lists_saved_keys_sorted(any_store: Store):
    """keys() returns every key with a record, sorted."""
    for key in ["b", "a.corrupt-1", "c(1)"]:
        await any_store.save(key, b'{"resumable":1}')
    await any_store.delete("b")

    assert ["a.corrupt-1", "c(1)"] == await any_store.keys()


@pytest.mark.parametrize("key", ["../escape", "a/b", "", "x" * 257, "nul\x00"])
async def test_keys_outside_the_rule_are_refused(any_store: Store, key: str):
    """Every store refuses keys that some store could not hold (or that name other files)."""
    with pytest.raises(InvalidKeyError):
        await any_store.save(key, b"{}")


async def test_a_job_runs_on_every_store(any_store: Store):
    """The engine works on the store, and a second run resumes from it."""
    async with job("contract", cursor=0, store=any_store, triggers=[]) as first:
        first.advance(3)
    async with job("contract", cursor=0, store=any_store, triggers=[]) as second:
        resumed = second.cursor

    assert 3 == resumed


async def test_file_store_writes_one_readable_file_per_key_and_no_leftovers(tmp_path: Path):
    """FileStore keeps DIR/KEY.json, plain JSON, with no temporary file left behind."""
    store = FileStore(tmp_path / "state")
    async with job("export-2024", cursor=0, store=store, triggers=[]) as j:
        j.advance(12)
    visible = sorted(p.name for p in (tmp_path / "state").iterdir() if not p.name.endswith(".lock"))

    assert ["export-2024.json"] == visible
    assert 12 == json.loads((tmp_path / "state" / "export-2024.json").read_text())["cursor"]


async def test_file_store_does_not_create_its_directory_to_read(tmp_path: Path):
    """Loading or listing a store that was never written creates nothing."""
    store = FileStore(tmp_path / "never")

    assert await store.load("k") is None
    assert [] == await store.keys()
    assert not (tmp_path / "never").exists()


async def test_file_store_fsyncs_the_file_and_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A save fsyncs the new file before the rename and the directory after it."""
    calls: list[str] = []
    real_fsync = os.fsync
    real_replace = Path.replace

    def fsync(fd: int) -> None:
        calls.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")  # noqa: PTH112
        real_fsync(fd)

    def replace(self: Path, target: Path) -> Path:
        calls.append("rename")
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    await FileStore(tmp_path).save("k", b"{}")

    assert ["file", "rename", "dir"] == calls


def test_file_store_repr_and_cli_location(tmp_path: Path):
    """Error messages name the store the way the CLI opens it."""
    store = FileStore(tmp_path)

    assert f"FileStore({str(tmp_path)!r})" == repr(store)
    assert str(tmp_path) == store.cli_location


# -- the shared stores: what only they promise ---------------------------------------------


def from_another_thread(action: Callable[[], Awaitable[object]]) -> object:
    """Run *action* to its end on a loop of its own, in another thread, and return its result.

    A guard is a plain function: this is how it can make another client act mid-save.
    """
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(_caught(action))))
    thread.start()
    thread.join()
    return result[0]


async def _caught(action: Callable[[], Awaitable[object]]) -> object:
    try:
        return await action()
    except Exception as exc:  # noqa: BLE001 - handed back for the test to look at
        return exc


@pytest.mark.parametrize(
    ("make", "secret_free"),
    [
        (lambda: RedisStore("redis://app:s3cret@redis.example:6379/2"), "redis://app:***@"),
        (lambda: SQLStore("postgresql://app:s3cret@db.example/jobs"), "postgresql+asyncpg://"),
    ],
)
def test_shared_stores_never_show_the_password(make: Callable[[], Any], secret_free: str):
    """repr() and the CLI location name the URL without its password (they reach logs)."""
    store = make()

    assert "s3cret" not in repr(store)
    assert "s3cret" not in store.cli_location
    assert secret_free in store.cli_location


def test_sql_store_picks_the_asyncio_driver_of_a_plain_url(tmp_path: Path):
    """``postgresql://`` and ``sqlite://`` mean asyncpg and aiosqlite: the engine is asyncio."""
    postgres = SQLStore("postgresql://u@h/db")
    sqlite = SQLStore(f"sqlite:///{tmp_path}/s.db")

    assert "postgresql+asyncpg://u@h/db" == postgres.url
    assert f"sqlite+aiosqlite:///{tmp_path}/s.db" == sqlite.url


async def test_redis_store_reruns_the_guard_when_another_client_wrote_in_between(
    redis_server: RedisServer,
):
    """A write by another client between the guard's read and the write is never overwritten
    unseen: the transaction fails, the store reads again and asks the guard again."""
    async with RedisStore(redis_server.url, prefix="between:") as store:
        await store.save("k", b"mine")
        seen: list[bytes | None] = []

        def guard(current: bytes | None) -> None:
            seen.append(current)
            if len(seen) == 1:
                redis_server.command("SET", "between:k", "theirs")

        await store.save("k", b"newer", guard=guard)

        assert [b"mine", b"theirs"] == seen
        assert b"newer" == await store.load("k")


async def test_sqlite_store_holds_the_write_lock_while_the_guard_checks(tmp_path: Path):
    """On SQLite, no other process can write between the guard's check and the write."""
    path = tmp_path / "state.sqlite"
    async with SQLStore(f"sqlite+aiosqlite:///{path}") as store:
        await store.save("k", b"mine")
        outcome: list[object] = []

        def guard(current: bytes | None) -> None:
            with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
                try:
                    other.execute("DELETE FROM resumable_state")
                    other.commit()
                    outcome.append("written")
                except sqlite3.OperationalError as exc:
                    outcome.append(str(exc))

        await store.save("k", b"newer", guard=guard)

        assert ["database is locked"] == outcome
        assert b"newer" == await store.load("k")


async def test_postgres_store_locks_the_row_while_the_guard_checks(
    postgres_server: PostgresServer,
):
    """On PostgreSQL, the guard runs under ``FOR UPDATE``: another writer of the row waits."""
    table = unique_table()
    async with SQLStore(postgres_server.url, table=table) as store:
        await store.save("k", b"mine")
        outcome: list[object] = []

        async def write_elsewhere() -> object:
            conn = await asyncpg.connect(postgres_server.dsn)
            try:
                await conn.execute("SET lock_timeout = '200ms'")
                return await conn.execute(f"UPDATE {table} SET data = 'x'::bytea")  # noqa: S608
            finally:
                await conn.close()

        def guard(current: bytes | None) -> None:
            outcome.append(type(from_another_thread(write_elsewhere)).__name__)

        await store.save("k", b"newer", guard=guard)

        assert ["LockNotAvailableError"] == outcome
        assert b"newer" == await store.load("k")


FROZEN_WRITER = """
import asyncio, sys
import resumable._stores._sql as sql
from resumable.sql import SQLStore

sql.FROZEN_WRITER_TIMEOUT = 1.0

def change(current):
    print("locked", flush=True)  # the parent freezes the process here, inside the transaction
    sys.stdin.readline()  # woken, and told to go on
    return b"zombie"

async def main():
    await SQLStore(sys.argv[1], table=sys.argv[2]).update("k", change)

asyncio.run(main())
"""


async def test_postgres_ends_the_session_of_a_writer_frozen_in_its_transaction(
    postgres_server: PostgresServer,
):
    """A process frozen with SIGSTOP while it holds the row lock does not hold a takeover
    back: the server ends its idle transaction, the other writer's save goes through, and
    the frozen one, woken, cannot write over it."""
    table = unique_table()
    async with SQLStore(postgres_server.url, table=table) as store:
        await store.save("k", b"before")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FROZEN_WRITER,
            postgres_server.url,
            table,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            async with asyncio.timeout(30):
                assert b"locked\n" == await child.stdout.readline()
            child.send_signal(signal.SIGSTOP)
            async with asyncio.timeout(30):  # without the server's limit: until it wakes
                await store.save("k", b"newer")
            child.send_signal(signal.SIGCONT)
            assert child.stdin is not None
            child.stdin.write(b"go on\n")
            async with asyncio.timeout(30):
                _, errors = await child.communicate()
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()

        assert b"newer" == await store.load("k")
        assert 0 != child.returncode, "the woken writer's transaction should have been ended"
        assert b"idle-in-transaction" in errors or b"terminat" in errors, errors[-500:]


async def test_postgres_store_retries_when_another_writer_inserts_the_same_new_key(
    postgres_server: PostgresServer,
):
    """Two first saves of one key: the one that loses the insert reads the winner's record
    and asks its guard again, instead of failing or overwriting it unseen."""
    table = unique_table()
    async with SQLStore(postgres_server.url, table=table) as store:
        await store.open()
        seen: list[bytes | None] = []

        async def insert_elsewhere() -> object:
            conn = await asyncpg.connect(postgres_server.dsn)
            try:
                return await conn.execute(
                    f"INSERT INTO {table} VALUES ('k', 'theirs'::bytea, now())"  # noqa: S608
                )
            finally:
                await conn.close()

        def guard(current: bytes | None) -> None:
            seen.append(current)
            if current is None:
                from_another_thread(insert_elsewhere)

        await store.save("k", b"mine", guard=guard)

        assert [None, b"theirs"] == seen
        assert b"mine" == await store.load("k")


async def test_redis_store_fails_plainly_while_the_server_is_gone_and_reconnects():
    """A lost server is an ordinary exception at once (the engine retries it within its
    budget); once the server is back, the same store works again."""
    server = RedisServer()
    try:
        async with RedisStore(server.url) as store:
            await store.save("k", b"before")
            port = server.port
            server.stop()
            with pytest.raises(redis.exceptions.ConnectionError):
                await store.load("k")
            server = RedisServer(port=port)
            await store.save("k", b"after")

            assert b"after" == await store.load("k")
    finally:
        server.stop()


async def test_sql_store_fails_plainly_when_the_database_is_unreachable():
    """No PostgreSQL where the URL points: an ordinary exception at once, no hang."""
    store = SQLStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        with pytest.raises(OSError, match="Connect call failed"):
            await store.load("k")
    finally:
        await store.aclose()
