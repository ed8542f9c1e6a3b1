"""Edge rate limits per route and key, in memory or shared through Redis; in-flight limits.

The counters are the ``limits`` library's sliding-window counter, the one the server
module uses: in Redis the check-and-increment of a hit is ONE Lua script, so two
gateways never both pass the last slot (Kong's read-then-increment race, where each
node reads the count and then increments it, lets N nodes overshoot by N-1). The
window's stats for the ``RateLimit-*`` headers are read after the decision.

While Redis is unreachable, each limit does what its ``on_store_error`` says: ``open``
lets the request through, ``closed`` answers 503; either way the request is counted in
``gateway_ratelimit_store_errors`` and never turns into a 500.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Scope

from ..server._client_ip import ClientResolver
from ..server._ratelimit import RateLimitDecision, parse_limit
from ._auth import Identity
from ._edge_config import RateLimitRule

__all__ = ["CompiledLimit", "EdgeLimiter", "InFlight", "StoreDown"]

_MAX_KEY = 128
_log = structlog.get_logger("flext_api.gateway")


@dataclass(frozen=True, slots=True)
class StoreDown:
    """Redis could not be asked; ``closed``: refuse the request (else let it through)."""

    closed: bool


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    """A rule with its limit parsed and its bucket name fixed."""

    rule: RateLimitRule
    item: RateLimitItem
    bucket: str
    header: bytes | None

    @classmethod
    def build(cls, route: str, index: int, rule: RateLimitRule) -> CompiledLimit:
        """Compile rule number ``index`` of ``route``."""
        return cls(
            rule=rule,
            item=parse_limit(rule.limit),
            bucket=f"{route}:{rule.name or index}",
            header=rule.header.lower().encode() if rule.header else None,
        )

    def key(self, scope: Scope, identity: Identity | None, clients: ClientResolver) -> str:
        """The value this limit counts per (see :class:`RateLimitRule`)."""
        kind = self.rule.key
        if kind == "consumer" and identity is not None and identity.subject:
            return "c:" + identity.subject[:_MAX_KEY]
        if kind == "api_key" and identity is not None and identity.key_name is not None:
            return "k:" + identity.key_name[:_MAX_KEY]
        if kind == "header" and self.header is not None:
            pairs: list[tuple[bytes, bytes]] = scope["headers"]
            for name, value in pairs:
                if name == self.header:
                    return "h:" + value.decode("latin-1")[:_MAX_KEY]
        return "ip:" + clients.client_ip(scope)


class EdgeLimiter:
    """The counters of one gateway: a memory store and, when configured, a Redis one.

    Kept across reloads (counts survive a config change) and closed at shutdown.
    """

    def __init__(self, redis_url: str | None, *, prefix: str = "flext-gw") -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._pool: Any = None
        self._redis: SlidingWindowCounterRateLimiter | None = None
        self._store_errors: tuple[type[BaseException], ...] = ()
        if redis_url is not None:
            from redis.asyncio import ConnectionPool  # the redis extra, only when configured
            from redis.exceptions import RedisError

            self._store_errors = (RedisError, OSError)

            # Short timeouts: a dead Redis must cost milliseconds, not the request's budget.
            self._pool = ConnectionPool.from_url(
                redis_url, socket_connect_timeout=0.25, socket_timeout=0.25
            )
            storage = RedisStorage(
                f"async+{redis_url}", implementation="redispy", connection_pool=self._pool
            )
            self._redis = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, limit: CompiledLimit, key: str) -> RateLimitDecision | StoreDown:
        """Count one request of ``key`` against ``limit``."""
        shared = limit.rule.store == "redis" and self._redis is not None
        limiter = self._redis if shared and self._redis is not None else self._memory
        keys = (self.prefix, limit.bucket, key)
        item = limit.item
        try:
            allowed = await limiter.hit(item, *keys)
            reset_at, remaining = await limiter.get_window_stats(item, *keys)
        except self._store_errors as exc:
            _log.warning("rate limit store unreachable", bucket=limit.bucket, error=repr(exc))
            return StoreDown(closed=limit.rule.on_store_error == "closed")
        return RateLimitDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=remaining,
            reset_after=max(0.0, reset_at - time.time()),
            window=item.get_expiry(),
        )

    async def aclose(self) -> None:
        """Close the Redis pool, if any."""
        if self._pool is not None:
            await self._pool.aclose()


class InFlight:
    """In-flight (concurrency) counts per route; kept across reloads."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def enter(self, route: str, limit: int) -> bool:
        """Take a slot of ``route``; False when ``limit`` requests are already in flight."""
        current = self.counts.get(route, 0)
        if current >= limit:
            return False
        self.counts[route] = current + 1
        return True

    def leave(self, route: str) -> None:
        """Give the slot back."""
        self.counts[route] -= 1
