"""Redis as a shared store for many workers: `RedisStore` (extra ``redis``)."""

from __future__ import annotations

from resumable._distribution import install_hint

try:
    import redis.asyncio  # noqa: F401 - imported to fail here, with the way out
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"resumable.redis needs redis-py, which is not installed: {install_hint('redis')}"
    ) from _missing

from resumable._stores._redis import RedisStore

__all__ = ["RedisStore"]
