"""`RedisStore`: one Redis key per record, the fencing check and the write in one transaction."""

from __future__ import annotations

import re
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, WatchError

from resumable._redact import redact
from resumable._stores._base import KEY_PATTERN, Change, Guard, check_key, guarded
from resumable._stores._connected import ConnectedStore, PerLoop, refusing

WATCH_ATTEMPTS = 20
"""How often a guarded save re-reads after another client wrote the key between its read and its
write, before it fails (and the engine retries it within its budget)."""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


_credentials = refusing(lambda exc: isinstance(exc, AuthenticationError))


class KeyContendedError(Exception):
    """Other clients kept writing a key between a guarded save's read and its write."""


class RedisStore(ConnectedStore):
    """Keeps each key's record in the Redis string ``PREFIX + KEY``.

    A save with a guard is optimistic and atomic: it ``WATCH``es the key, reads it, lets the
    guard check it, then writes it in a ``MULTI``/``EXEC`` transaction that Redis refuses if
    anyone wrote the key after the ``WATCH``; then it reads again and asks the guard again.
    No interleaving lets a write through that the guard did not see the latest record for.

    Durability is the server's: with ``appendonly yes`` and ``appendfsync always`` a saved
    record survives a crash of the Redis host; with Redis's defaults the last second or so
    may not.

    Args:
        url: A ``redis://`` (or ``rediss://``, ``unix://``) URL, as redis-py reads it;
            options such as ``?socket_timeout=5`` go in its query string.
        prefix: Put before every key, so several applications can share a database.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", *, prefix: str = "resumable:"):
        self.url = url
        self.prefix = prefix
        self._clients: PerLoop[aioredis.Redis] = PerLoop(self._connect, _close)

    def __repr__(self) -> str:
        return f"RedisStore({redact(self.url)!r}, prefix={self.prefix!r})"

    @property
    def cli_location(self) -> str:
        """The ``--store`` argument of the command line that opens this store (no password)."""
        return redact(self.url)

    def _connect(self) -> aioredis.Redis:
        # Bounded timeouts, so a dead server is an error the engine retries within its
        # budget; the URL's own options win over these defaults.
        return aioredis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=10)

    @_credentials
    async def open(self) -> None:
        """Connect (the engine calls this when a job starts, so a dead server shows early)."""
        await self._clients.get().ping()

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key, self)

    @_credentials
    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None``."""
        # Without decode_responses, redis-py returns bytes (its annotations allow str too).
        return cast("bytes | None", await self._clients.get().get(self._name(key)))

    @_credentials
    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Replace *key*'s record with *data*, atomically with *guard*'s check of the current one.

        Raises:
            KeyContendedError: Other clients wrote the key between every read and write.
        """
        if guard is None:
            await self._clients.get().set(self._name(key), data)
            return
        await self.update(key, guarded(data, guard))

    @_credentials
    async def update(self, key: str, change: Change) -> None:
        """Replace *key*'s record with what *change* makes of it, in one atomic step.

        Raises:
            KeyContendedError: Other clients wrote the key between every read and write.
        """
        name = self._name(key)
        client = self._clients.get()
        for _ in range(WATCH_ATTEMPTS):
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(name)
                data = change(cast("bytes | None", await pipe.get(name)))
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(name, data)
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return
        raise KeyContendedError(
            f"key {key!r} of {self!r} changed between every read and write of "
            f"{WATCH_ATTEMPTS} attempts: other clients keep writing it"
        )

    @_credentials
    async def delete(self, key: str) -> None:
        """Forget *key*."""
        await self._clients.get().delete(self._name(key))

    @_credentials
    async def keys(self) -> list[str]:
        """Return the keys under this store's prefix, sorted (others' names are skipped)."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"
        found: set[str] = set()
        async for name in self._clients.get().scan_iter(match=pattern, count=1000):
            key = name.decode("utf-8", "replace")[len(self.prefix) :]
            if KEY_PATTERN.fullmatch(key):
                found.add(key)
        return sorted(found)

    async def aclose(self) -> None:
        """Close this event loop's connections; the store reconnects if used again."""
        await self._clients.aclose()


async def _close(client: aioredis.Redis) -> None:
    await client.aclose()
