"""The storage seam of :class:`~flext_api.cache.FlextApiCache`: one protocol, many backends.

A backend stores opaque bytes with a remaining lifetime and knows nothing about values
(:mod:`._codec` does that once, above it). Backends translate their own failures into
:class:`~flext_api.FlextApiError` (a lost Redis connection is ``CONNECT_ERROR``) and
treat a damaged entry as a miss, logged, never as an exception to the caller.

Lifetimes cross the seam as *remaining seconds* (``None``: no expiry), so no two
processes have to agree on a clock; each backend stores the absolute expiry it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = ["BackendUsage", "CacheBackend", "CacheStats", "Stored"]

#: What a backend returns for a key: the stored bytes and the seconds left (None: no expiry).
Stored: TypeAlias = tuple[bytes, float | None]


@dataclass(frozen=True, slots=True)
class BackendUsage:
    """What a backend knows about its own size (None where it cannot tell cheaply)."""

    entries: int | None = None
    size_bytes: int | None = None
    evictions: int = 0
    corrupt_entries: int = 0


@dataclass(frozen=True, slots=True)
class CacheStats:
    """:meth:`FlextApiCache.stats`: request counters plus the backend's usage."""

    backend: str
    hits: int
    misses: int
    sets: int
    deletes: int
    entries: int | None
    size_bytes: int | None
    evictions: int
    corrupt_entries: int

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``; 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def as_dict(self) -> dict[str, str | int | float | None]:
        """A plain dict (for logs and JSON), with ``hit_rate``."""
        out: dict[str, str | int | float | None] = dict(asdict(self))
        out["hit_rate"] = self.hit_rate
        return out


@runtime_checkable
class CacheBackend(Protocol):
    """Byte storage with per-entry expiry, chosen by name in :class:`FlextApiCache`."""

    name: str

    async def get(self, key: str) -> Stored | None:
        """The bytes of ``key`` and their remaining lifetime, or None (missing or expired)."""
        ...

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` for ``ttl`` seconds (None: no expiry)."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        ...

    async def clear(self) -> None:
        """Remove every entry of this cache (and nothing else)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        """The found subset of ``keys``."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        """Store every item with the same ``ttl``."""
        ...

    async def usage(self) -> BackendUsage:
        """Entry count, bytes, evictions and corrupt entries seen."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...
