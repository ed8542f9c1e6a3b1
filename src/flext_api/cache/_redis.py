"""``RedisBackend``: entries shared by every process that talks to one Redis (redis-py asyncio).

Each entry is one Redis string under ``prefix + key`` with a ``PX`` expiry, so Redis
itself drops expired entries. A read is ``GET`` + ``PTTL`` in one pipelined round trip,
which gives the remaining lifetime without a clock shared between processes.

Size bounds belong to Redis (``maxmemory`` with an ``allkeys-lru``/``allkeys-lfu``
policy); this backend never evicts by itself. ``clear()`` deletes only keys under its
prefix (``SCAN`` + ``UNLINK``), never the whole database. Redis failures become
:class:`~flext_api.FlextApiError` (``CONNECT_ERROR``, ``READ_TIMEOUT``).

Needs the ``redis`` extra: ``pip install 'flext-api[redis]'``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from .._errors import ErrorCode, FlextApiError
from ._backend import BackendUsage, Stored
from ._durations import Duration, to_seconds

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisBackend"]

_log = structlog.get_logger("flext_api.cache")

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_SCAN_BATCH = 500


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn redis-py exceptions into the flext-api error tree."""
    from redis import exceptions

    try:
        yield
    except exceptions.TimeoutError as exc:
        raise FlextApiError.from_code(
            ErrorCode.READ_TIMEOUT, f"redis {operation} timed out: {exc}"
        ) from exc
    except exceptions.ConnectionError as exc:
        raise FlextApiError.from_code(
            ErrorCode.CONNECT_ERROR, f"redis {operation} failed to connect: {exc}"
        ) from exc
    except exceptions.RedisError as exc:
        raise FlextApiError.from_code(
            ErrorCode.UNEXPECTED_ERROR, f"redis {operation} failed: {exc}"
        ) from exc


def _remaining(pttl: int) -> float | None:
    # PTTL: -1 = no expiry (-2, gone, is a miss: see RedisBackend._found).
    return None if pttl < 0 else pttl / 1000.0


#: The longest expiry sent to Redis (about 146 million years): Redis refuses a PX whose
#: deadline overflows a 64-bit millisecond clock ("invalid expire time").
_MAX_PX = 2**62


def _px(ttl: float | None) -> int | None:
    if ttl is None or ttl == math.inf:
        return None
    return max(1, int(min(ttl * 1000, _MAX_PX)))


class RedisBackend:
    """Entries in Redis at ``url`` (or in a ``client`` you own), under ``prefix``.

    ``socket_timeout`` (seconds or ``timedelta``, finite and > 0; None: no timeout)
    bounds connecting and each reply. A bad one is refused here: redis-py would take
    it and then fail every call, which the caches would log as an outage.
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "flext:cache:",
        client: Redis | None = None,
        socket_timeout: Duration | None = 5.0,
    ) -> None:
        timeout = (
            None
            if socket_timeout is None
            else to_seconds(socket_timeout, "socket_timeout", allow_zero=False)
        )
        if timeout == math.inf:
            raise ValueError("socket_timeout must be finite seconds; None means no timeout")
        if client is None:
            if not url:
                raise ValueError("RedisBackend needs a url (redis://host:port/db) or a client")
            if not isinstance(url, str):
                raise TypeError(f"RedisBackend url must be a str, got {type(url).__name__}")
            try:
                from redis.asyncio import Redis
            except ImportError as exc:  # pragma: no cover - the dev environment has redis
                raise ImportError(
                    "the redis cache backend needs the 'redis' extra: "
                    "pip install 'flext-api[redis]'"
                ) from exc
            client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client: Redis = client
        self.prefix = prefix
        self._foreign = 0

    def _k(self, key: str) -> bytes:
        # surrogatepass, as the filesystem backend does: a key with a lone surrogate is
        # stored rather than failing in redis-py's strict UTF-8 encoder.
        return (self.prefix + key).encode("utf-8", "surrogatepass")

    def _found(self, key: str, data: Any, pttl: Any) -> Stored | None:
        """One GET + PTTL reply pair as a stored entry; a key of another type is a miss."""
        from redis import exceptions

        for reply in (data, pttl):
            if isinstance(reply, exceptions.ResponseError) and str(reply).startswith("WRONGTYPE"):
                # Not an entry of ours (a hash, a list... under our prefix): a miss, like a
                # damaged entry. The next set overwrites it.
                self._foreign += 1
                _log.warning("cache.redis.foreign_entry", key=key, reason=str(reply))
                return None
            if isinstance(reply, Exception):
                raise reply
        pttl = int(pttl)
        if data is None or pttl == -2:
            # -2: the key expired between the GET and the PTTL (they are not one
            # transaction). Read as "no expiry", a local tier would keep it for ever.
            return None
        return bytes(data), _remaining(pttl)

    async def get(self, key: str) -> Stored | None:
        with _translated("GET"):
            pipe = self._client.pipeline(transaction=False)
            pipe.get(self._k(key))
            pipe.pttl(self._k(key))
            data, pttl = await pipe.execute(raise_on_error=False)
            return self._found(key, data, pttl)

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        with _translated("SET"):
            await self._client.set(self._k(key), data, px=_px(ttl))

    async def delete(self, key: str) -> bool:
        with _translated("DEL"):
            removed: int = await self._client.delete(self._k(key))
        return removed > 0

    async def clear(self) -> None:
        pattern = self.prefix.translate(_GLOB_SPECIAL) + "*"
        with _translated("SCAN/UNLINK"):
            batch: list[Any] = []
            async for name in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                batch.append(name)
                if len(batch) >= _SCAN_BATCH:
                    await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                await self._client.unlink(*batch)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        if not keys:
            return {}
        with _translated("GET"):
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(self._k(key))
                pipe.pttl(self._k(key))
            replies = await pipe.execute(raise_on_error=False)
            found: dict[str, Stored] = {}
            for i, key in enumerate(keys):
                item = self._found(key, replies[2 * i], replies[2 * i + 1])
                if item is not None:
                    found[key] = item
        return found

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        if not items:
            return
        px = _px(ttl)
        with _translated("SET"):
            pipe = self._client.pipeline(transaction=False)
            for key, data in items.items():
                pipe.set(self._k(key), data, px=px)
            await pipe.execute()

    async def usage(self) -> BackendUsage:
        """Counts this prefix's keys with ``SCAN`` (O(n) in Redis keys): call it sparingly."""
        pattern = self.prefix.translate(_GLOB_SPECIAL) + "*"
        with _translated("SCAN"):
            count = 0
            async for _ in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                count += 1
        return BackendUsage(entries=count, corrupt_entries=self._foreign)

    async def close(self) -> None:
        if self._owns_client:
            with _translated("close"):
                await self._client.aclose()

    def __repr__(self) -> str:
        return f"<RedisBackend prefix={self.prefix!r}>"
