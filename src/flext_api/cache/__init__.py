"""Caching for flext-api: computed values, key-value storage, and RFC 9111 HTTP caching.

* :class:`AsyncSmartCache` - ``await cache.get_or_compute(key, fn)`` with per-key
  single-flight, typed error caching (:class:`CachedError`), TTLs, W-TinyLFU or LRU
  eviction, stale-while-revalidate, XFetch early refresh, tags and patterns.
* :class:`FlextApiCache` - async get/set/delete over the ``memory``, ``redis`` and
  ``filesystem`` backends (:class:`CacheBackend`), values as bytes or JSON.
* :class:`CachePlugin` - a client plugin implementing RFC 9111 private (or shared)
  HTTP caching on top of a :class:`FlextApiCache`.
* :func:`register_enricher` - async log enrichers (fapilog's), typically cached with an
  :class:`AsyncSmartCache`; they run on :func:`flext_api.get_logger` loggers.

See ``docs/caching.md`` for semantics, defaults and recipes.
"""

from __future__ import annotations

from .._logger import register_enricher as register_enricher
from ._backend import BackendUsage as BackendUsage
from ._backend import CacheBackend as CacheBackend
from ._backend import CacheStats as CacheStats
from ._cached_error import CachedError as CachedError
from ._facade import FlextApiCache as FlextApiCache
from ._facade import register_backend as register_backend
from ._filesystem import FilesystemBackend as FilesystemBackend
from ._http_plugin import CachePlugin as CachePlugin
from ._http_spec import HttpCachePolicy as HttpCachePolicy
from ._memory import MemoryBackend as MemoryBackend
from ._policy import ClockPolicy as ClockPolicy
from ._policy import TinyLfuPolicy as TinyLfuPolicy
from ._redis import RedisBackend as RedisBackend
from ._smart import AsyncSmartCache as AsyncSmartCache
from ._smart_parts import WarmReport as WarmReport

__all__ = [
    "AsyncSmartCache",
    "BackendUsage",
    "CacheBackend",
    "CachePlugin",
    "CacheStats",
    "CachedError",
    "ClockPolicy",
    "FilesystemBackend",
    "FlextApiCache",
    "HttpCachePolicy",
    "MemoryBackend",
    "RedisBackend",
    "TinyLfuPolicy",
    "WarmReport",
    "register_backend",
    "register_enricher",
]
