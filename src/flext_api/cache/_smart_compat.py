"""``AsyncSmartCache._cache`` / ``._lock``: the internals fapilog's guide reaches into.

fapilog's invalidation recipe does::

    if hasattr(self.cache, '_cache') and key in self.cache._cache:
        async with self.cache._lock:
            del self.cache._cache[key]

Our cache keeps its entries elsewhere, so ``hasattr`` was False and the recipe invalidated
nothing while logging that it had. :class:`EntriesView` makes it work: ``key in`` and
``del`` act on the real entries (``del`` is :meth:`AsyncSmartCache.invalidate` without
the await; a backend copy is deleted by a task). Writing through it fails loudly - use
``await cache.set(...)``. ``_lock`` is an ``asyncio.Lock`` of its own: the cache's
entries change only on the event loop's thread, so holding it is harmless and blocks
nothing else. Prefer :meth:`AsyncSmartCache.invalidate` / ``invalidate_pattern`` /
``invalidate_tag`` in new code.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._smart import AsyncSmartCache

__all__ = ["EntriesView"]


class EntriesView(MutableMapping[str, Any]):
    """The cached values of an :class:`AsyncSmartCache`, as a dict whose ``del`` invalidates."""

    __slots__ = ("_owner",)

    def __init__(self, owner: AsyncSmartCache) -> None:
        self._owner = owner

    def __getitem__(self, key: str) -> Any:
        entry = self._owner._entries.get(key)
        if entry is None or not entry.has_value:
            raise KeyError(key)
        return entry.value

    def __contains__(self, key: object) -> bool:
        return key in self._owner._entries

    def __delitem__(self, key: str) -> None:
        if not self._owner.discard(key):
            raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("AsyncSmartCache._cache is read-and-delete only: use await cache.set()")

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._owner._entries))

    def __len__(self) -> int:
        return len(self._owner._entries)

    def __repr__(self) -> str:
        return f"<EntriesView of {self._owner!r}>"
