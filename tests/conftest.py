"""Shared fixtures: every store the contract tests run against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from resumable import FileStore, MemoryStore, Store

StoreFactory = Callable[[Path], Awaitable[Store]]


async def _memory(tmp_path: Path) -> Store:
    return MemoryStore()


async def _file(tmp_path: Path) -> Store:
    return FileStore(tmp_path / "state")


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "file": _file,
}
"""Every store the contract runs over; the Apify stores add themselves in test_apify_store.py."""

from _apify_stores import APIFY_STORE_FACTORIES  # noqa: E402 - beside the list it extends

STORE_FACTORIES.update(APIFY_STORE_FACTORIES)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each store in turn, empty."""
    return await STORE_FACTORIES[request.param](tmp_path)
