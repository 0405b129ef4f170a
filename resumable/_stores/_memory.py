"""`MemoryStore`: records in a dict, for tests and for jobs that only need to survive errors."""

from __future__ import annotations

from resumable._stores._base import Guard, check_key


class MemoryStore:
    """Keeps records in this process's memory; fencing is exact within the process."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._records)} keys>)"

    async def load(self, key: str) -> bytes | None:
        """Return the record under *key*, or ``None``."""
        return self._records.get(check_key(key, self))

    async def save(self, key: str, data: bytes, *, guard: Guard | None = None) -> None:
        """Store *data* under *key* after *guard* accepts the current record."""
        check_key(key, self)
        if guard is not None:
            guard(self._records.get(key))
        self._records[key] = bytes(data)

    async def delete(self, key: str) -> None:
        """Forget *key*."""
        self._records.pop(check_key(key, self), None)

    async def keys(self) -> list[str]:
        """Return the stored keys, sorted."""
        return sorted(self._records)
