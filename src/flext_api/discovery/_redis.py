"""``RedisBackend``: instances shared through Redis, kept alive by heartbeats.

Layout per service (``prefix`` defaults to ``flext:discovery``):

* ``{prefix}:{name}:members`` - a sorted set of instance ids scored by their expiry,
  in milliseconds of the Redis server's clock (``TIME``), so the clocks of the
  registering processes never matter;
* ``{prefix}:{name}:data`` - a hash of id -> instance JSON;
* ``{prefix}:{name}:changes`` - a pub/sub channel told of every change.

Registering and the heartbeat run one Lua script (score + data, publish only when
something changed), so a crashed process's instances simply stop being renewed and
drop out ``ttl`` seconds later; listing runs another script that removes expired
members (and tells watchers). A heartbeat re-writes the whole record, so instances come
back by themselves after Redis restarts empty. Watchers wake on pub/sub messages and
also every ``poll_interval`` (expiry publishes nothing until someone lists).

Needs the ``redis`` extra (redis-py's asyncio client).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
from collections.abc import AsyncGenerator

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from .._errors import ConfigError, ErrorCode, FlextApiError
from .._redact import strip_url
from .._result import FlextResult
from ._instance import ServiceInstance, check_stored

__all__ = ["RedisBackend"]

_log = structlog.get_logger("flext_api.discovery")

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

_REGISTER = (
    _NOW
    + """
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if added == 1 or old ~= ARGV[3] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('PUBLISH', KEYS[3], ARGV[1])
end
return added
"""
)

_UNREGISTER = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 then redis.call('PUBLISH', KEYS[3], ARGV[1]) end
return removed
"""

# Lua's unpack() takes at most ~8000 values (LUAI_MAXCSTACK): ids go to HDEL and HMGET
# in batches, or a service of more instances could never be listed again (and a mass
# expiry would drop the members but leave their records behind for good).
_LIST = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  for i = 1, #expired, 1000 do
    redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 999, #expired)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('PUBLISH', KEYS[3], 'expired')
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local records = {}
for i = 1, #ids, 1000 do
  local batch = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #batch do records[#records + 1] = batch[j] end
end
return {ids, records}
"""
)


def _closed_error() -> FlextApiError:
    # redis-py would open a new connection on the closed client, which nobody closes.
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "redis registry backend is closed")


def _unreachable(exc: BaseException) -> FlextApiError:
    err = FlextApiError.from_code(
        ErrorCode.CONNECT_ERROR, f"redis registry unreachable: {type(exc).__name__}: {exc}"
    )
    err.__cause__ = exc
    return err


class RedisBackend:
    """A registry backend on Redis with TTL heartbeats and pub/sub change pushes.

    Args:
        url: ``redis://host:port/db`` (ignored when ``client`` is given).
        ttl: seconds an instance stays without a heartbeat (default 10).
        heartbeat: seconds between heartbeats (default ``ttl / 3``).
        poll_interval: watchers relist at least this often (default ``ttl / 4``).
        prefix: key prefix.
        client: an existing ``redis.asyncio.Redis`` (not closed by :meth:`aclose`).
    """

    kind = "redis"
    shared = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        ttl: float = 10.0,
        heartbeat: float | None = None,
        poll_interval: float | None = None,
        prefix: str = "flext:discovery",
        client: aioredis.Redis | None = None,
    ) -> None:
        if not ttl > 0:
            raise ConfigError("ttl must be a positive number of seconds")
        self.ttl = ttl
        self.heartbeat = heartbeat if heartbeat is not None else ttl / 3
        self.poll_interval = poll_interval if poll_interval is not None else ttl / 4
        if not (0 < self.heartbeat < ttl and self.poll_interval > 0):
            raise ConfigError("heartbeat must be in (0, ttl) and poll_interval positive")
        self.prefix = prefix
        self._own_client = client is None
        timeout = min(2.0, ttl / 2)
        if client is None:
            try:
                client = aioredis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            except ValueError as exc:  # redis-py's word for a URL it cannot use
                raise ConfigError(f"redis url {strip_url(url)!r} is not usable: {exc}") from exc
        self._redis: aioredis.Redis = client
        self._owned: dict[tuple[str, str], ServiceInstance] = {}
        self._beat: asyncio.Task[None] | None = None
        self._beat_failing = False
        self._closing = False

    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}:{name}"
        return [f"{base}:members", f"{base}:data", f"{base}:changes"]

    async def _put(self, instance: ServiceInstance) -> None:
        data = json.dumps(instance.to_dict(), separators=(",", ":"), sort_keys=True)
        ttl_ms = str(int(self.ttl * 1000))
        await self._redis.eval(_REGISTER, 3, *self._keys(instance.name), instance.id, ttl_ms, data)

    async def register(self, instance: ServiceInstance) -> FlextResult[None]:
        if self._closing:
            return FlextResult(error=_closed_error())
        try:
            await self._put(instance)
        except (RedisError, OSError) as exc:
            return FlextResult(error=_unreachable(exc))
        self._owned[(instance.name, instance.id)] = instance
        if self._beat is None:
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())
        return FlextResult.ok(None)

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        self._owned.pop((name, instance_id), None)
        if self._closing:
            return FlextResult(error=_closed_error())
        try:
            await self._redis.eval(_UNREGISTER, 3, *self._keys(name), instance_id)
        except (RedisError, OSError) as exc:
            return FlextResult(error=_unreachable(exc))
        return FlextResult.ok(None)

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        if self._closing:
            return FlextResult(error=_closed_error())
        try:
            ids, raw = await self._redis.eval(_LIST, 3, *self._keys(name))
        except (RedisError, OSError) as exc:
            return FlextResult(error=_unreachable(exc))
        instances = []
        for member, item in zip(ids, raw, strict=True):
            if item is None:
                continue  # a member without a record (another writer's, half-removed)
            try:
                instance = ServiceInstance.from_dict(json.loads(item))
                # str when the caller's client decodes responses itself
                key_id = member if isinstance(member, str) else member.decode(errors="replace")
                check_stored(instance, name, key_id)
            except (FlextApiError, ValueError) as exc:
                _log.warning("discovery.bad_record", backend="redis", service=name, error=str(exc))
                continue
            instances.append(instance)
        return FlextResult.ok(instances)

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        # The pub/sub connection lives in a task of its own and only sets an event, so
        # ending the watch never waits on redis-py's connection teardown for long.
        if self._closing:
            raise _closed_error()
        wake = asyncio.Event()
        failure: builtins.list[BaseException] = []
        listener = asyncio.get_running_loop().create_task(
            self._listen(self._keys(name)[2], wake, failure)
        )
        try:
            while True:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await wake.wait()
                if failure:
                    raise _unreachable(failure[0])
                wake.clear()
                yield None
        finally:
            listener.cancel()
            await asyncio.wait({listener}, timeout=1.0)

    async def _listen(
        self, channel: str, wake: asyncio.Event, failure: builtins.list[BaseException]
    ) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            while not self._closing:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.poll_interval
                )
                if message is not None:
                    wake.set()
        except (RedisError, OSError) as exc:
            failure.append(exc)
            wake.set()
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.heartbeat)
            try:
                for instance in list(self._owned.values()):
                    await self._put(instance)
            except (RedisError, OSError) as exc:
                if not self._beat_failing:
                    self._beat_failing = True
                    _log.warning("discovery.heartbeat_failed", backend="redis", error=str(exc))
                continue
            if self._beat_failing:
                self._beat_failing = False
                _log.info("discovery.heartbeat_recovered", backend="redis")

    async def aclose(self) -> None:
        """Stop heartbeats (owned instances then expire) and close the connection pool."""
        self._closing = True
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.wait({self._beat}, timeout=2.0)
            self._beat = None
        if self._own_client:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return f"<RedisBackend ttl={self.ttl:g}s [{len(self._owned)} instances kept alive]>"
