"""Redis as a shared store for many workers: `RedisStore` (extra ``resumable[redis]``)."""

from __future__ import annotations

try:
    import redis.asyncio  # noqa: F401 - imported to fail here, with the way out
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'resumable.redis needs redis-py, which is not installed: pip install "resumable[redis]"'
    ) from _missing

from resumable._stores._redis import RedisStore

__all__ = ["RedisStore"]
