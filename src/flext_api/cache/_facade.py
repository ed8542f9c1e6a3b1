"""``FlextApiCache``: one async key-value API over memory, Redis or filesystem storage.

::

    cache = FlextApiCache("redis", {"url": "redis://127.0.0.1:6379/0", "default_ttl": 300})
    await cache.set("user:1", {"name": "Ada"})
    await cache.get("user:1")          # {'name': 'Ada'}

Values are ``bytes`` or plain JSON data (dict with str keys, list, tuple, str, int,
float, bool, None); anything else - a datetime, UUID, Enum member or dataclass too, which
would come back as a str or a dict - is a ``TypeError`` at ``set`` naming the key and
the type (see :mod:`._codec`). Every entry carries its own expiry. Backends are
classes behind :class:`CacheBackend`, chosen by name; :func:`register_backend` adds one.

Config keys (unknown keys are a :class:`~flext_api.ConfigError`):

* every backend: ``default_ttl`` (seconds or timedelta; None = no expiry).
* ``memory``: ``max_entries`` (default ``CacheConfig().max_entries``, 10 000), ``max_bytes``.
* ``redis``: ``url`` (required unless ``client``), ``prefix`` (``"flext:cache:"``),
  ``client`` (a ``redis.asyncio.Redis`` you own), ``socket_timeout`` (5 s).
* ``filesystem``: ``path`` (required), ``max_bytes`` (256 MiB), ``fsync`` (False),
  ``cleanup_interval`` (seconds between sweeps of expired files on write; None = only
  when over ``max_bytes``).

The FLEXT guide's keys (``host``/``port``/``db``/``password``, ``max_size``, ``ttl``,
``cache_dir``) are accepted too; see :mod:`._seed_config`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import structlog

from .._clock import Clock
from .._config import CacheConfig
from .._errors import ConfigError
from ._backend import CacheBackend, CacheStats
from ._codec import CorruptEntryError, decode_value, encode_value
from ._durations import Duration, to_seconds
from ._seed_config import seed_options

__all__ = ["BackendFactory", "FlextApiCache", "register_backend"]

_log = structlog.get_logger("flext_api.cache")

#: Builds a backend from the config (without ``default_ttl``) and the clock.
BackendFactory = Callable[[dict[str, Any], "Clock | None"], CacheBackend]


def _memory(config: dict[str, Any], clock: Clock | None) -> CacheBackend:
    from ._memory import MemoryBackend

    config.setdefault("max_entries", CacheConfig().max_entries)
    return MemoryBackend(**config, clock=clock)


def _redis(config: dict[str, Any], clock: Clock | None) -> CacheBackend:
    from ._redis import RedisBackend

    return RedisBackend(**config)


def _filesystem(config: dict[str, Any], clock: Clock | None) -> CacheBackend:
    from ._filesystem import FilesystemBackend

    if "path" not in config:
        raise ConfigError(
            "the filesystem cache backend needs config['path']", details={"key": "path"}
        )
    return FilesystemBackend(config.pop("path"), **config, clock=clock)


_BACKENDS: dict[str, tuple[BackendFactory, frozenset[str]]] = {
    "memory": (_memory, frozenset({"max_entries", "max_bytes"})),
    "redis": (_redis, frozenset({"url", "prefix", "client", "socket_timeout"})),
    "filesystem": (_filesystem, frozenset({"path", "max_bytes", "fsync", "cleanup_interval"})),
}


def register_backend(name: str, factory: BackendFactory, config_keys: Iterable[str] = ()) -> None:
    """Make ``FlextApiCache(name, config)`` build a backend with ``factory(config, clock)``."""
    _BACKENDS[name] = (factory, frozenset(config_keys))


class FlextApiCache:
    """Async get/set/delete/clear/get_many/set_many with TTLs over a named backend.

    Lookups that hit a damaged entry count as misses (the backend logs and removes it).
    Backend outages raise :class:`~flext_api.FlextApiError` (e.g. ``CONNECT_ERROR``);
    callers that prefer a miss, like the HTTP cache, catch it.
    """

    def __init__(
        self,
        backend: str | CacheBackend = "memory",
        config: Mapping[str, Any] | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        options = dict(config or {})
        if isinstance(backend, str):
            options = seed_options(backend, options)
        ttl = options.pop("default_ttl", None)
        try:
            self.default_ttl = (
                None if ttl is None else to_seconds(ttl, "default_ttl", allow_zero=False)
            )
        except (TypeError, ValueError) as exc:  # as for every other bad config value
            label = backend if isinstance(backend, str) else type(backend).__name__
            raise ConfigError(
                f"invalid {label!r} cache config: {exc}", details={"key": "default_ttl"}
            ) from exc
        if isinstance(backend, str):
            try:
                factory, known = _BACKENDS[backend]
            except KeyError:
                raise ConfigError(
                    f"unknown cache backend {backend!r}; expected one of {sorted(_BACKENDS)}",
                    details={"backend": backend},
                ) from None
            unknown = sorted(set(options) - known)
            if unknown:
                raise ConfigError(
                    f"unknown config for the {backend!r} cache backend: {unknown}; "
                    f"known: {sorted(known | {'default_ttl'})}",
                    details={"backend": backend, "unknown": unknown},
                )
            try:
                self.backend = factory(options, clock)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"invalid {backend!r} cache config: {exc}") from exc
        else:
            if options:
                raise ConfigError(
                    "config other than default_ttl needs a backend name, not an instance"
                )
            self.backend = backend
        self._hits = self._misses = self._sets = self._deletes = self._corrupt = 0

    @staticmethod
    def _key(key: object) -> str:
        # Every backend lays keys out as text (a prefix, a file name hash): an int key
        # would work in memory and fail only on Redis or the filesystem.
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__} {key!r:.80}")
        return key

    def _keys(self, keys: Iterable[str]) -> list[str]:
        if isinstance(keys, str | bytes):
            raise TypeError(f"keys must be an iterable of str, not one {type(keys).__name__}")
        return [self._key(key) for key in dict.fromkeys(keys)]

    def _ttl(self, ttl: Duration | None) -> float | None:
        return self.default_ttl if ttl is None else to_seconds(ttl, "ttl", allow_zero=False)

    def _decode(self, key: str, data: bytes) -> tuple[bool, Any]:
        try:
            return True, decode_value(data)
        except CorruptEntryError as exc:
            self._corrupt += 1
            _log.warning("cache.corrupt_value", backend=self.backend.name, key=key, reason=str(exc))
            return False, None

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when missing, expired or damaged."""
        found = await self.get_with_ttl(key)
        return default if found is None else found[0]

    async def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        """``(value, seconds left)`` (None: no expiry) for ``key``, or None on a miss."""
        stored = await self.backend.get(self._key(key))
        if stored is not None:
            ok, value = self._decode(key, stored[0])
            if ok:
                self._hits += 1
                return value, stored[1]
            await self.backend.delete(key)
        self._misses += 1
        return None

    async def set(self, key: str, value: Any, ttl: Duration | None = None) -> None:
        """Store ``value`` for ``ttl`` s (default ``default_ttl``); TypeError unless plain JSON."""
        data = encode_value(self._key(key), value)
        await self.backend.set(key, data, self._ttl(ttl))
        self._sets += 1

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        self._key(key)
        self._deletes += 1
        return await self.backend.delete(key)

    async def clear(self) -> None:
        """Remove every entry of this cache."""
        await self.backend.clear()

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found subset of ``keys`` as ``{key: value}``."""
        wanted = self._keys(keys)
        stored = await self.backend.get_many(wanted)
        out: dict[str, Any] = {}
        for key, (data, _) in stored.items():
            ok, value = self._decode(key, data)
            if ok:
                out[key] = value
            else:
                await self.backend.delete(key)
        self._hits += len(out)
        self._misses += len(wanted) - len(out)
        return out

    async def set_many(self, items: Mapping[str, Any], ttl: Duration | None = None) -> None:
        """Store every item with one ``ttl``; nothing is stored if a value is unserializable."""
        encoded = {self._key(key): encode_value(key, value) for key, value in items.items()}
        await self.backend.set_many(encoded, self._ttl(ttl))
        self._sets += len(encoded)

    async def stats(self) -> CacheStats:
        """Hits, misses, sets, deletes, plus the backend's entries, bytes, evictions, damage."""
        usage = await self.backend.usage()
        return CacheStats(
            backend=self.backend.name,
            hits=self._hits,
            misses=self._misses,
            sets=self._sets,
            deletes=self._deletes,
            entries=usage.entries,
            size_bytes=usage.size_bytes,
            evictions=usage.evictions,
            corrupt_entries=usage.corrupt_entries + self._corrupt,
        )

    async def close(self) -> None:
        """Release the backend's connections."""
        await self.backend.close()

    async def __aenter__(self) -> FlextApiCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<FlextApiCache backend={self.backend!r} default_ttl={self.default_ttl}>"
