"""A store that cannot be used says why: refused, credentials refused, or no answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from helpers import cli, one_line_error
from servers import PostgresServer, RedisServer, free_port, serving

from resumable import Store, StoreError, job
from resumable._retry import retrying
from resumable.redis import RedisStore
from resumable.sql import SQLStore

PASSWORD = "right"  # noqa: S105 - the throwaway test servers' password


@pytest.fixture(scope="module")
def guarded_redis() -> Iterator[RedisServer]:
    """A redis-server that asks every client for the password ``right``."""
    with serving(lambda: RedisServer(password=PASSWORD), "the credential tests") as server:
        yield server


@pytest.fixture(scope="module")
def guarded_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster whose ``postgres`` user has the password ``right``."""
    with serving(lambda: PostgresServer(password=PASSWORD), "the credential tests") as server:
        yield server


def wrong(url: str) -> str:
    return url.replace(":right@", ":wrong@")


async def claim(store: Store) -> StoreError:
    """Start a job on *store*; return the error it fails with."""
    with pytest.raises(StoreError) as raised:
        async with job("k", 0, store=store, triggers=[], interval=None):
            pass
    await store.aclose()  # type: ignore[attr-defined]
    return raised.value


async def test_a_refused_connection_is_reported_as_refused() -> None:
    """A store nothing listens for is reported as a refused connection that names what to
    check, not as a store that did not answer in time."""
    error = await claim(RedisStore(f"redis://127.0.0.1:{free_port()}/0"))

    assert "the connection was refused" in str(error)
    assert "check the host and port in the store's URL" in str(error)
    assert "did not answer" not in str(error)


async def test_refused_connections_end_the_retries_early() -> None:
    """Retrying gives up on connections refused once *refused_for* has passed, however far
    its deadline is (a restarting server refuses for a moment; a wrong address forever)."""
    attempts = 0

    async def refuse() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")

    loop = asyncio.get_running_loop()
    with pytest.raises(StoreError) as raised:
        await retrying(
            refuse, deadline=loop.time() + 3600, describe=lambda: "Saving", refused_for=0.05
        )

    assert "the connection was refused" in str(raised.value)
    assert attempts > 1  # retried meanwhile


async def test_transient_failures_are_still_retried_to_the_deadline() -> None:
    """A failure that is not a refusal keeps being retried until the operation succeeds."""
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 5:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "done"

    loop = asyncio.get_running_loop()
    done = await retrying(
        flaky, deadline=loop.time() + 3600, describe=lambda: "Saving", refused_for=0.0
    )

    assert "done" == done
    assert 5 == attempts


@pytest.mark.parametrize("server", ["redis", "postgres"])
async def test_a_wrong_password_says_the_credentials_were_refused_at_once(
    server: str, request: pytest.FixtureRequest
) -> None:
    """A wrong password is not retried, and the error says that the store refused the
    credentials and what to check, without showing them; the right one works."""
    fixture = request.getfixturevalue(f"guarded_{server}")
    make = RedisStore if server == "redis" else SQLStore
    error = await claim(make(wrong(fixture.url)))
    store = make(fixture.url)
    async with job("k", 0, store=store, triggers=[], interval=None) as j:
        j.advance(1)
    await store.aclose()

    assert "the store refused the credentials it was given" in str(error)
    assert "check the user name and password in the store's URL" in str(error)
    assert "failed after 1 attempt(s)" in str(error)
    assert "wrong" not in str(error)
    assert "cannot reach" not in str(error)
    assert "completed" == j.outcome.status  # type: ignore[union-attr]


@pytest.mark.parametrize("server", ["redis", "postgres"])
def test_the_command_line_says_the_credentials_were_refused(
    server: str, request: pytest.FixtureRequest
) -> None:
    """The command line words a refused password as the job does, in one line."""
    url = wrong(request.getfixturevalue(f"guarded_{server}").url)
    said = one_line_error(cli("--store", url, "list"))

    assert "the store refused the credentials it was given" in said
    assert "wrong" not in said


def test_the_command_line_says_a_connection_was_refused() -> None:
    """The command line words a refused connection as the job does."""
    said = one_line_error(cli("--store", f"redis://127.0.0.1:{free_port()}", "list"))

    assert "the connection was refused" in said
    assert "check the host and port in the store's URL" in said
