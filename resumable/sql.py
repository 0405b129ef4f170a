"""SQL databases as a shared store for many workers: `SQLStore` (extra ``sql``)."""

from __future__ import annotations

from resumable._distribution import install_hint

try:
    import sqlalchemy.ext.asyncio  # noqa: F401 - imported to fail here, with the way out
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"resumable.sql needs SQLAlchemy, which is not installed: {install_hint('sql')}"
    ) from _missing

from resumable._stores._sql import SQLStore

__all__ = ["SQLStore"]
