"""``MemoryBackend``: bytes in a process-local LRU, bounded by entries and optionally bytes.

The default backend of :class:`~flext_api.cache.FlextApiCache` and of the HTTP cache.
It stores encoded bytes rather than objects so every backend behaves the same (a caller
mutating a value it got back never changes the cache). An ``OrderedDict`` is the whole
LRU; no library needed. Expiry uses the injected monotonic clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from .._clock import Clock, get_clock
from ._backend import BackendUsage, Stored
from ._durations import to_count

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """LRU of ``max_entries`` entries (and at most ``max_bytes`` of data when given)."""

    name = "memory"

    def __init__(
        self, *, max_entries: int = 10_000, max_bytes: int | None = None, clock: Clock | None = None
    ) -> None:
        self.max_entries = to_count(max_entries, "max_entries")
        self.max_bytes = None if max_bytes is None else to_count(max_bytes, "max_bytes")
        self._clock = get_clock(clock)
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._evictions = 0

    def _lookup(self, key: str, now: float) -> Stored | None:
        item = self._data.get(key)
        if item is None:
            return None
        data, expires_at = item
        if now >= expires_at:
            self._discard(key)
            return None
        self._data.move_to_end(key)
        return data, (None if expires_at == math.inf else expires_at - now)

    def _discard(self, key: str) -> bool:
        item = self._data.pop(key, None)
        if item is None:
            return False
        self._bytes -= len(item[0])
        return True

    def _store(self, key: str, data: bytes, ttl: float | None, now: float) -> None:
        self._discard(key)
        if self.max_bytes is not None and len(data) > self.max_bytes:
            # An entry larger than the whole bound is not kept, and does not push the
            # others out on its way (the key's old value, replaced, is gone).
            self._evictions += 1
            return
        self._data[key] = (data, now + ttl if ttl is not None else math.inf)
        self._bytes += len(data)
        while len(self._data) > self.max_entries or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        ):
            _, (old, _) = self._data.popitem(last=False)
            self._bytes -= len(old)
            self._evictions += 1

    async def get(self, key: str) -> Stored | None:
        return self._lookup(key, self._clock.monotonic())

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        self._store(key, data, ttl, self._clock.monotonic())

    async def delete(self, key: str) -> bool:
        return self._discard(key)

    async def clear(self) -> None:
        self._data.clear()
        self._bytes = 0

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        now = self._clock.monotonic()
        found = {key: self._lookup(key, now) for key in keys}
        return {key: item for key, item in found.items() if item is not None}

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        now = self._clock.monotonic()
        for key, data in items.items():
            self._store(key, data, ttl, now)

    async def usage(self) -> BackendUsage:
        return BackendUsage(
            entries=len(self._data), size_bytes=self._bytes, evictions=self._evictions
        )

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"<MemoryBackend entries={len(self._data)}/{self.max_entries} bytes={self._bytes}>"
