"""No credential is ever shown: store reprs, errors, logs and the command line redact URLs."""

from __future__ import annotations

import logging

import pytest
from helpers import cli, one_line_error
from servers import free_port

from resumable import StoreError, job
from resumable._redact import redact
from resumable.redis import RedisStore
from resumable.sql import SQLStore


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://h:6379/0?password=hunter2", "redis://h:6379/0?password=***"),
        ("redis://app:hunter2@h:6379/2", "redis://app:***@h:6379/2"),
        ("redis://:hunter2@h", "redis://:***@h"),
        ("rediss://default:a/b+c==@h:6380", "rediss://default:***@h:6380"),
        (
            "postgresql+asyncpg://u@h/db?sslmode=require&sslpassword=hunter2&password=hunter2",
            "postgresql+asyncpg://u@h/db?sslmode=require&sslpassword=***&password=***",
        ),
        (
            "redis://h/0?Token=x&api_key=y;auth=z&db=1",
            "redis://h/0?Token=***&api_key=***;auth=***&db=1",
        ),
        (
            "redis://h/0?email=a@b.example&socket_timeout=5",
            "redis://h/0?email=a@b.example&socket_timeout=5",
        ),
        ("sqlite+aiosqlite:///data/a@b.db", "sqlite+aiosqlite:///data/a@b.db"),
        (
            "cannot reach redis://u:hunter2@h/0?password=hunter2: refused",
            "cannot reach redis://u:***@h/0?password=***: refused",
        ),
        ("a directory, not a URL: ./state", "a directory, not a URL: ./state"),
    ],
)
def test_redact_hides_every_credential_and_keeps_the_rest(text: str, shown: str) -> None:
    """The password of user:password@ and every query parameter named like a secret become
    ***, in a URL or in a message holding one; everything else is left as it was."""
    assert shown == redact(text)


URLS = [
    "redis://127.0.0.1:{port}/0?password=hunter2",
    "redis://app:hunter2@127.0.0.1:{port}/0",
    "postgresql+asyncpg://app@127.0.0.1:{port}/db?password=hunter2",
    "postgresql://app:hunter2@127.0.0.1:{port}/db",
]


@pytest.mark.parametrize("url", URLS)
async def test_a_password_in_a_url_shows_nowhere(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A password in the store's URL, in its userinfo or its query, is in neither the store's
    repr, nor its command-line location, nor the error and log lines of a job that cannot
    reach the store."""
    url = url.format(port=free_port())
    store = RedisStore(url) if url.startswith("redis") else SQLStore(url)
    with caplog.at_level(logging.DEBUG, logger="resumable"), pytest.raises(StoreError) as raised:
        async with job("k", 0, store=store, triggers=[], interval=None):
            pass
    await store.aclose()
    shown = {
        "repr": repr(store),
        "cli_location": store.cli_location,
        "error": str(raised.value),
        "log": caplog.text,
    }

    assert {} == {where: text for where, text in shown.items() if "hunter2" in text}
    assert "***" in shown["error"]


@pytest.mark.parametrize("url", URLS)
def test_the_command_line_shows_no_password(url: str) -> None:
    """What the command line says about a store it cannot reach names it without the
    password, wherever in the URL it was."""
    said = one_line_error(cli("--store", url.format(port=free_port()), "list"))

    assert "hunter2" not in said
    assert "***" in said
