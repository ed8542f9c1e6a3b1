"""Inbound rate limiting on the ``limits`` library: a default limit and named buckets.

``limits`` gives async, atomic counters on memory or Redis (a Lua script per hit), so
several workers share one budget when ``storage_uri`` is ``redis://`` (the per-process
counters of slowapi#226 and litestar#4700 are the failure this avoids). The strategy
defaults to the moving window, a log of the last ``limit`` hits per client: the only one
of the three that never lets more than the limit through in any window. The fixed window
lets 2x through across a window edge; the sliding-window counter estimates the previous
window's share, rounds it down (``limits`` 5.x, memory and Redis alike) and assumes its
hits were spread evenly, so ``1/minute`` lets two calls through one second apart across
an edge. Both stay available as ``strategy`` for limits so large that a log of them per
client costs too much memory.

Stricter buckets for sensitive routes are a dependency - no ``request`` parameter needed
in the endpoint (slowapi#177)::

    @app.post("/login", dependencies=[Depends(rate_limit("login", "5/minute"))])

A refusal is a 429 problem with ``Retry-After``; every limited response carries
``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` and ``RateLimit-Policy``
(draft-ietf-httpapi-ratelimit-headers-06). On a route with a named bucket, that bucket's
headers are the ones sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from flext_api._server_config import ServerRateLimitConfig

from ._client_ip import ClientResolver, rate_limit_key

__all__ = [
    "TOO_MANY_REQUESTS_DETAIL",
    "RateLimitDecision",
    "RateLimitService",
    "parse_limit",
    "rate_limit",
]

_STRATEGIES: dict[str, type[RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


def parse_limit(text: str) -> RateLimitItem:
    """Parse ``"5/minute"``, ``"100 per hour"``...; ValueError naming the text if invalid."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {text!r}: use e.g. '5/minute'") from exc


TOO_MANY_REQUESTS_DETAIL = "Too many requests; retry later."
"""The message of a refusal by a rate limit (the 429's detail, GraphQL's error)."""


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The outcome of one hit on one bucket."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    window: int

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before the bucket has room (at least 1)."""
        return max(1, math.ceil(self.reset_after))

    def header_lines(self) -> list[tuple[bytes, bytes]]:
        """The ``RateLimit-*`` response headers of this decision."""
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % math.ceil(self.reset_after)),
            (b"ratelimit-policy", b"%d;w=%d" % (self.limit, self.window)),
        ]

    def header_dict(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers as text (for responses and exceptions)."""
        return {name.decode(): value.decode() for name, value in self.header_lines()}


class RateLimitService:
    """The limiter of one app: storage, strategy and client resolution."""

    def __init__(self, config: ServerRateLimitConfig, *, logger: Any) -> None:
        self._config = config
        self._logger = logger
        self._pool: Any = None
        self._storage = self._make_storage(config.storage_uri)
        self._limiter = _STRATEGIES[config.strategy](self._storage)
        self.clients = ClientResolver(config.trusted_proxies)
        self.ipv6_prefix = config.ipv6_prefix
        self.headers = config.headers
        self.default_limit = (
            parse_limit(config.default_limit) if config.default_limit is not None else None
        )

    def _make_storage(self, uri: str) -> Storage:
        if uri.startswith("memory://"):
            return MemoryStorage()
        from redis.asyncio import ConnectionPool  # the redis extra, only when configured

        # Our own pool, so shutdown can close it (limits has no close()).
        self._pool = ConnectionPool.from_url(uri)
        return RedisStorage(f"async+{uri}", implementation="redispy", connection_pool=self._pool)

    async def hit(self, bucket: str, item: RateLimitItem, client: str) -> RateLimitDecision:
        """Consume one unit of ``bucket`` for ``client``.

        A storage failure (Redis down) lets the request through when ``fail_open`` (the
        default: an outage of the limiter should not become an outage of the service)
        and answers 503 otherwise; either way it is logged.
        """
        keys = (self._config.key_prefix, bucket, client)
        try:
            allowed = await self._limiter.hit(item, *keys)
            reset_at, remaining = await self._limiter.get_window_stats(item, *keys)
        except Exception as exc:
            self._logger.error("rate limit storage failed", bucket=bucket, exc_info=exc)
            if not self._config.fail_open:
                raise HTTPException(503, "Rate limiting is unavailable.") from exc
            return RateLimitDecision(True, item.amount, item.amount, 0.0, item.get_expiry())
        return RateLimitDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=remaining,
            reset_after=max(0.0, reset_at - time.time()),
            window=item.get_expiry(),
        )

    def client_key(self, scope: Scope) -> str:
        """The key a limit counts the client of ``scope`` under: its address, an IPv6 one
        grouped by ``ipv6_prefix`` (see ``rate_limit_key``)."""
        return rate_limit_key(self.clients.client_ip(scope), self.ipv6_prefix)

    async def hit_default(
        self, scope: Scope, limit: RateLimitItem | None = None
    ) -> RateLimitDecision:
        """One hit of the ``"default"`` bucket for the client of ``scope``: ``limit``, or
        the app's :attr:`default_limit` (ValueError when neither is set)."""
        item = limit if limit is not None else self.default_limit
        if item is None:
            raise ValueError("no default rate limit to hit")
        return await self.hit("default", item, self.client_key(scope))

    async def aclose(self) -> None:
        """Close the Redis connection pool, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def rate_limit(
    name: str, limit: str, *, key: Callable[[Request], str] | None = None
) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency that applies the named bucket ``limit`` to each client of a route.

    ``key`` overrides the client key (default: the proxy-aware client address, an IPv6
    one grouped by ``rate_limit.ipv6_prefix``), e.g. to limit per user. Does nothing when
    rate limiting is disabled in the config.
    """
    item = parse_limit(limit)

    async def dependency(request: Request, response: Response) -> None:
        state = getattr(request.app.state, "flext", None)
        service: RateLimitService | None = getattr(state, "rate_limiter", None)
        if service is None:
            return
        client = key(request) if key is not None else service.client_key(request.scope)
        decision = await service.hit(name, item, client)
        headers = decision.header_dict() if service.headers else {}
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
            raise HTTPException(429, TOO_MANY_REQUESTS_DETAIL, headers=headers)
        # FastAPI copies the headers of this sub-response onto the endpoint's response.
        response.headers.update(headers)

    return dependency
