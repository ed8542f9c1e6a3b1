"""The optional shared tier of ``AsyncSmartCache``: a :class:`FlextApiCache` several processes use.

Values computed in one process are written there (under ``namespace + key``, with the
entry's TTL) and found there by the others before they compute. The tier is an
optimisation, never a point of failure: every backend error is logged and treated as
a miss or a skipped write. Errors are not shared (each process retries on its own
schedule).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog

from .._errors import FlextApiError

if TYPE_CHECKING:
    from ._facade import FlextApiCache

__all__ = ["SharedTier"]

_log = structlog.get_logger("flext_api.cache")


class SharedTier:
    """Read-through / write-behind access to a shared :class:`FlextApiCache`."""

    __slots__ = ("cache", "hits", "namespace")

    def __init__(self, cache: FlextApiCache, namespace: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self.hits = 0

    async def load(self, key: str) -> tuple[Any, float | None] | None:
        """``(value, seconds left)`` from the shared cache, or None (missing or unreachable)."""
        try:
            found = await self.cache.get_with_ttl(self.namespace + key)
        except FlextApiError as exc:
            _log.warning("smart_cache.backend_get_failed", key=key, error=str(exc))
            return None
        if found is not None:
            self.hits += 1
        return found

    async def save(self, key: str, value: Any, ttl: float | None) -> None:
        """Write ``value``; an unreachable backend or a value that is not plain JSON is logged.

        Such a value (a datetime, UUID, Enum member, dataclass...) stays local: another
        process would read it back as a str or a dict, so sharing it would make one key
        answer with different types in different processes.
        """
        try:
            await self.cache.set(self.namespace + key, value, ttl=ttl)
        except (FlextApiError, TypeError) as exc:
            _log.warning("smart_cache.backend_set_failed", key=key, error=str(exc))

    async def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys`` from the shared cache (failures logged)."""
        for key in keys:
            try:
                await self.cache.delete(self.namespace + key)
            except FlextApiError as exc:
                _log.warning("smart_cache.backend_delete_failed", key=key, error=str(exc))
