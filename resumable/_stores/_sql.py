"""`SQLStore`: a row per record in a SQL table; fencing check and write in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateTable

from resumable._redact import redact
from resumable._stores._base import Change, Guard, check_key, guarded
from resumable._stores._connected import ConnectedStore, PerLoop, refusing
from resumable._stores._files import LockWait

FROZEN_WRITER_TIMEOUT = 10.0
"""Seconds after which PostgreSQL ends the session of a writer that went quiet inside its
transaction (``idle_in_transaction_session_timeout``): a process frozen mid-save (SIGSTOP, a
paused VM, a partitioned node) would otherwise hold its row lock, and every run taking the
key over would wait for it. A save's transaction takes milliseconds; one cut this way fails
and is retried within the engine's budget."""

INSERT_ATTEMPTS = 5
"""How often a save retries its transaction when another client inserted the same new key
first, before it fails (and the engine retries it within its budget)."""

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_BEGIN = "resumable_begin"


def _credentials_refused(exc: Exception) -> bool:
    """Whether the server refused the user or password: SQLSTATE class 28, "invalid
    authorization specification", on the driver's error that SQLAlchemy wraps."""
    cause: BaseException | None = exc
    while cause is not None:
        if str(getattr(cause, "sqlstate", None) or "").startswith("28"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


_credentials = refusing(_credentials_refused)


@attrs.define
class _Database:
    engine: AsyncEngine
    ready: bool = False


class SQLStore(ConnectedStore):
    """Keeps each key's record in one row of a SQL table, through SQLAlchemy's asyncio engine.

    A save reads the row, lets the guard check it and writes it in one transaction that no
    other writer of the key can interleave with: on PostgreSQL the read is
    ``SELECT ... FOR UPDATE`` (two writers of a new key race on its primary key, and the
    loser runs its transaction again); on SQLite the transaction starts with
    ``BEGIN IMMEDIATE``, which takes the database's write lock before the read. On
    PostgreSQL through asyncpg, a writer frozen inside its transaction has its session ended
    by the server after `FROZEN_WRITER_TIMEOUT` seconds, so it cannot hold a takeover back
    (SQLite has no such limit: a frozen writer holds the whole file's lock). The table
    (``key`` primary key, ``data`` bytes, ``updated_at``) is created when missing. SQLite
    databases are switched to WAL mode, so readers never wait for a writer.

    Args:
        url: A SQLAlchemy URL with an asyncio driver: ``postgresql+asyncpg://user:pw@host/db``
            or ``sqlite+aiosqlite:///state.db``. ``postgresql://`` and ``sqlite://`` get
            those drivers; other asyncio dialects work if they support ``FOR UPDATE``.
        table: The table that holds the records.
    """

    def __init__(self, url: str, *, table: str = "resumable_state"):
        parsed = make_url(url)
        driver = _ASYNC_DRIVERS.get(parsed.drivername)
        if driver is not None:
            parsed = parsed.set(drivername=driver)
        self.url = parsed.render_as_string(hide_password=False)
        self.table = Table(
            table,
            MetaData(),
            Column("key", String(256), primary_key=True),
            Column("data", LargeBinary, nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._databases: PerLoop[_Database] = PerLoop(self._connect, _dispose)

    def __repr__(self) -> str:
        return f"SQLStore({redact(self.url)!r}, table={self.table.name!r})"

    @property
    def cli_location(self) -> str:
        """The ``--store`` argument of the command line that opens this store (no password)."""
        return redact(self.url)

    def _connect(self) -> _Database:
        if not self._sqlite:
            settings = {
                "idle_in_transaction_session_timeout": str(int(FROZEN_WRITER_TIMEOUT * 1000))
            }
            asyncpg = make_url(self.url).get_driver_name() == "asyncpg"
            connect_args = {"server_settings": settings} if asyncpg else {}
            return _Database(
                create_async_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
            )
        engine = create_async_engine(self.url)
        event.listen(engine.sync_engine, "connect", _sqlite_connected)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return _Database(engine)

    @_credentials
    async def open(self) -> None:
        """Connect and create the table if missing (the engine calls this when a job starts)."""
        await self._engine()

    async def _engine(self) -> AsyncEngine:
        database = self._databases.get()
        if not database.ready:
            await self._write(database.engine, self._create_table)
            database.ready = True
        return database.engine

    async def _create_table(self, conn: AsyncConnection) -> None:
        await conn.execute(CreateTable(self.table, if_not_exists=True))

    @_credentials
    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None``."""
        check_key(key, self)
        async with (await self._engine()).connect() as conn:
            data = await conn.scalar(select(self.table.c.data).where(self.table.c.key == key))
        return None if data is None else bytes(data)

    @_credentials
    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Replace *key*'s record with *data*, in one transaction with *guard*'s check."""
        await self.update(key, guarded(data, guard))

    @_credentials
    async def update(self, key: str, change: Change) -> None:
        """Replace *key*'s record with what *change* makes of it, in one transaction."""
        check_key(key, self)
        table = self.table
        read = select(table.c.data).where(table.c.key == key)
        if not self._sqlite:
            read = read.with_for_update()

        async def transaction(conn: AsyncConnection) -> None:
            row = (await conn.execute(read)).first()
            data = change(None if row is None else bytes(row[0]))
            values: dict[str, Any] = {"data": data, "updated_at": datetime.now(UTC)}
            if row is None:
                await conn.execute(insert(table).values(key=key, **values))
            else:
                await conn.execute(update(table).where(table.c.key == key).values(**values))

        await self._write(await self._engine(), transaction)

    @_credentials
    async def delete(self, key: str) -> None:
        """Forget *key*."""
        check_key(key, self)
        statement = delete(self.table).where(self.table.c.key == key)

        async def transaction(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._write(await self._engine(), transaction)

    async def _write(
        self, engine: AsyncEngine, transaction: Callable[[AsyncConnection], Awaitable[None]]
    ) -> None:
        """Run *transaction* on a connection of its own; again when it lost a race it may lose.

        Two races: another writer inserted the same new key first (PostgreSQL: our
        ``FOR UPDATE`` found no row to lock), or another process holds SQLite's write lock
        (SQLite's own wait sleeps up to 100 ms a try, so a busy writer would starve us:
        we wait in `LockWait`'s finer steps, on the event loop).
        """
        inserts = 0
        wait = LockWait(f"{self!r}")
        while True:
            try:
                async with engine.connect() as conn:
                    if self._sqlite:
                        await conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
                    async with conn.begin():
                        await transaction(conn)
            except IntegrityError:
                inserts += 1
                if inserts == INSERT_ATTEMPTS:
                    raise
            except OperationalError as exc:
                if not (self._sqlite and "locked" in str(exc.orig)):
                    raise
                await wait.pause()
            else:
                return

    @_credentials
    async def keys(self) -> list[str]:
        """Return the keys that have a row, sorted."""
        async with (await self._engine()).connect() as conn:
            found = (await conn.scalars(select(self.table.c.key))).all()
        return sorted(found)

    async def aclose(self) -> None:
        """Close this event loop's connections; the store reconnects if used again."""
        await self._databases.aclose()


async def _dispose(database: _Database) -> None:
    await database.engine.dispose()


def _sqlite_connected(dbapi_connection: Any, _: object) -> None:
    # Let SQLAlchemy emit BEGIN itself (the driver's own BEGIN is deferred and late), let
    # readers go on while a writer holds the lock, and report a held lock at once
    # (`SQLStore._write` waits for it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))
