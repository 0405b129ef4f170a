"""Where the state lives: the ``--store LOCATION`` argument, opened as a `Store` and closed."""

from __future__ import annotations

import contextlib
import importlib
import re
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import attrs

from resumable._cli._errors import CliError, one_line
from resumable._distribution import install_hint
from resumable._redact import redact
from resumable._retry import explain
from resumable._stores import FileStore, Store, SupportsAclose, SupportsOpen

DEFAULT_LOCATION = ".resumable"
APIFY_PREFIX = "apify:"
HELP = (
    "LOCATION is a FileStore directory (default: .resumable), apify:DIR for the default "
    "key-value store of Apify/Crawlee local storage in DIR (e.g. apify:./storage), a Redis URL "
    "(redis://, rediss://, unix://) or a SQLAlchemy URL (postgresql+asyncpg://..., "
    "sqlite+aiosqlite:///state.db)."
)

Kind = Literal["file", "apify", "redis", "sql"]

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_SQL_DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb", "oracle", "mssql"})
# kind: (module, class, extra)
_SHARED = {
    "redis": ("resumable.redis", "RedisStore", "redis"),
    "sql": ("resumable.sql", "SQLStore", "sql"),
}


@attrs.frozen
class Location:
    """A parsed ``--store`` argument: what kind of store, and where.

    Args:
        text: The argument as given.
        kind: Which store it names.
    """

    text: str
    kind: Kind

    @classmethod
    def parse(cls, text: str) -> Location:
        """Tell which store *text* names, without touching it.

        Raises:
            CliError: It is a URL of a scheme no store speaks.
        """
        if text.startswith(APIFY_PREFIX):
            return cls(text, "apify")
        url = _URL.match(text)
        if url is None:
            _refuse_a_broken_url(text)
            return cls(text, "file")
        scheme = url.group(1).lower()
        if scheme in _REDIS_SCHEMES:
            return cls(text, "redis")
        if scheme.partition("+")[0] in _SQL_DIALECTS:
            return cls(text, "sql")
        raise CliError(
            f"--store {text}: unknown scheme {scheme}://; a store is a directory, "
            "apify:DIR, a redis://, rediss:// or unix:// URL, or a SQLAlchemy URL such as "
            "postgresql+asyncpg://HOST/DB or sqlite+aiosqlite:///state.db"
        )

    @property
    def directory(self) -> Path:
        """The directory of a FileStore or of Apify/Crawlee local storage."""
        if self.kind == "apify":
            return Path(self.text[len(APIFY_PREFIX) :] or ".")
        return Path(self.text)

    def describe(self) -> str:
        """Name the store for a person (without a URL's password)."""
        if self.kind == "apify":
            return f"the default key-value store of {self.directory}"
        return redact(self.text)

    def entry(self, key: str) -> str:
        """Name *key*'s entry as the user sees it in the store (a file name for a FileStore)."""
        return f"{key}.json" if self.kind == "file" else key

    def where(self, key: str) -> str | None:
        """Say which file holds *key*'s record, for the stores that keep records in files."""
        if self.kind == "apify":
            name = urllib.parse.quote(key, safe="")
            return str((self.directory / "key_value_stores" / "default" / name).resolve())
        if self.kind == "file":
            return str(FileStore(self.directory).path(key).resolve())
        return None


def _refuse_a_broken_url(text: str) -> None:
    """Refuse a store's URL with its slashes missing (``redis:/host``), not a directory name."""
    scheme, colon, rest = text.partition(":")
    known = scheme.lower() in _REDIS_SCHEMES or scheme.lower().partition("+")[0] in _SQL_DIALECTS
    if not colon or not known or Path(text).exists():
        return
    slashes = ":///" if scheme.lower().startswith("sqlite") else "://"  # sqlite:///state.db
    raise CliError(
        f"--store {text} is neither a directory nor a URL: a URL's scheme is followed by "
        f"'://' (did you mean {scheme}{slashes}{rest.lstrip('/')}?)"
    )


@contextlib.asynccontextmanager
async def opened(location: Location) -> AsyncIterator[Store]:
    """Open the store at *location* without creating anything; close it afterwards.

    Raises:
        CliError: Nothing is there, it is another kind of store, or its extra is missing.
    """
    store = await _open(location)
    try:
        yield store
    finally:
        await _close(store)


async def _open(location: Location) -> Store:
    if location.kind == "apify":
        return await _open_apify(location.directory)
    if location.kind == "file":
        return _open_directory(location)
    return await _open_shared(location)


async def _open_shared(location: Location) -> Store:
    """Import the store class of a URL only now (its extra is optional), make it and connect."""
    if location.kind == "sql":
        _check_sqlite_file(location)
    module_name, class_name, extra = _SHARED[location.kind]
    need = f"--store {location.describe()} needs the {extra} extra: {install_hint(extra)}"
    try:
        store_class = getattr(importlib.import_module(module_name), class_name)
        store: Store = store_class(location.text)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"{need} ({one_line(exc)})") from exc
    except Exception as exc:  # each driver has its own error for a bad URL
        raise CliError(
            f"--store {location.describe()} is not a usable URL: {one_line(exc)}"
        ) from exc
    if isinstance(store, SupportsOpen):
        try:
            await store.open()
        except Exception as exc:  # each driver has its own connection errors
            with contextlib.suppress(Exception):
                await _close(store)
            if isinstance(exc, ImportError):  # the URL's driver, imported on connecting
                raise CliError(f"{need} ({one_line(exc)})") from exc
            reason, advice = explain(exc)
            reason = " ".join(reason.split())
            raise CliError(
                f"cannot reach the store at {location.describe()}: {reason}; {advice}"
            ) from exc
    return store


async def _close(store: Store) -> None:
    if isinstance(store, SupportsAclose):
        await store.aclose()


def _check_sqlite_file(location: Location) -> None:
    """Refuse a SQLite URL whose database file does not exist: SQLStore would create it."""
    scheme, _, rest = location.text.partition("://")
    if scheme.partition("+")[0].lower() != "sqlite":
        return
    database = rest[1:].split("?", 1)[0]  # sqlite:///relative.db, sqlite:////absolute.db
    if database in ("", ":memory:") or Path(database).is_file():
        return
    raise CliError(
        f"no store at {location.text}: the SQLite database {database} does not exist (three "
        "slashes before a relative path, four before an absolute one)"
    )


def _open_directory(location: Location) -> FileStore:
    directory = location.directory
    if not directory.exists():
        raise CliError(
            f"no store at {location.text}: the directory does not exist (pass --store with the "
            "directory of your FileStore, or apify:DIR for Apify/Crawlee local storage)"
        )
    if not directory.is_dir():
        raise CliError(
            f"no store at {location.text}: it is a file, not a directory (pass --store with the "
            "directory of your FileStore)"
        )
    if (directory / "key_value_stores").is_dir():
        raise CliError(
            f"{location.text} looks like Apify/Crawlee local storage (it holds "
            f"key_value_stores/), not a FileStore directory: pass --store apify:{location.text}"
        )
    return FileStore(directory)


async def _open_apify(directory: Path) -> Store:
    """Open the default key-value store of the Crawlee/Apify local storage in *directory*."""
    _check_apify_directory(directory)
    try:
        from resumable.apify import ApifyStore  # noqa: PLC0415 - the apify extra is optional
    except ImportError as exc:
        raise CliError(
            f"apify: stores need the apify extra: {install_hint('apify')} ({one_line(exc)})"
        ) from exc
    # local() opens the store without purging it, as an Actor started locally would.
    store = ApifyStore.local(directory)
    await store.open()
    return store


def _check_apify_directory(directory: Path) -> None:
    kvs_dir = directory / "key_value_stores" / "default"
    if kvs_dir.is_dir():
        return
    hint = "the directory that holds key_value_stores/, usually ./storage"
    if directory.is_dir() and any(directory.glob("*.json")):
        hint = f"it holds *.json records: if it is a FileStore, pass --store {directory}"
    raise CliError(
        f"no Apify/Crawlee local storage at {directory}: {kvs_dir} does not exist ({hint})"
    )
