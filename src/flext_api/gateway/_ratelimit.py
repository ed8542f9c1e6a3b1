"""Edge rate limits per route and key, in memory or shared through Redis; in-flight limits.

The counters are a sliding-window counter: in memory the ``limits`` library's algorithm
(the one the server module uses) run synchronously by :class:`MemoryWindows` (``limits``'
asyncio memory storage takes a lock and may start an expiry task per hit, which cost
more than half of what the rest of a cached request does); in Redis the same algorithm
and key layout as ``limits``' ``acquire_sliding_window.lua``, extended to return the
window's counts, so the check, the increment AND the numbers for the ``RateLimit-*``
headers are ONE atomic script and one round trip (``limits`` needs a second call for
the stats). Atomicity is the point: Kong's read-then-increment race, where each node
reads the count and then increments it, lets N nodes overshoot by N-1; here two
gateways never both pass the last slot.

A shared limit of a high rate leases its slots: the script takes up to ``lease`` slots
of the window at once (``incrby``, in the same atomic step as the check), the request
uses one and the gateway spends the rest locally, for that key, until they run out or
the Redis window they were counted in ends (then they are dropped). Redis thus sees one
round trip per ``lease`` requests of a hot key instead of one each. A slot is counted
in Redis before it is used, so the gateways together never admit more than the limit;
they may admit fewer: the slots one gateway holds when its window ends, at most
``lease - 1`` per gateway and key. The default lease is 1 % of the limit, at most 64
(``100/minute`` and below: 1, a round trip per request, as without leases); ``lease:
1`` turns it off. The ``RateLimit-Remaining`` of a leased answer is the window's count
when the lease was taken, plus the slots this gateway still holds.

While Redis is unreachable, each limit does what its ``on_store_error`` says: ``open``
lets the request through, ``closed`` answers 503; either way the request is counted in
``gateway_ratelimit_store_errors`` and never turns into a 500. Slots already leased are
spent first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem
from starlette.types import Scope

from ..server._client_ip import ClientResolver, rate_limit_key
from ..server._ratelimit import RateLimitDecision, parse_limit
from ._auth import Identity
from ._edge_config import RateLimitRule
from ._resp import RedisReplyError, RespConnection, lean_url_options

__all__ = ["CompiledLimit", "EdgeLimiter", "InFlight", "MemoryWindows", "StoreDown"]

_MAX_KEY = 128
_ARGUMENTS_MAX = 8192

# limits' acquire_sliding_window.lua (times in ms), returning the counts it decided on;
# ARGV[3] slots at most are taken at once (a lease), the first reply element says how
# many were (0: refused).
_SLIDING = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local want = tonumber(ARGV[3]) or 1
local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end
local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = tonumber(redis.call('pttl', KEYS[2])) or 0
if previous_ttl <= 0 then previous_ttl = 0 end
if current_ttl <= 0 then current_ttl = 0 end
local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count
if weighted + 1 > limit then
    return {0, previous_count, previous_ttl, current_count, current_ttl}
end
local taken = math.min(want, limit - weighted)
if redis.call('exists', KEYS[2]) == 1 then
    current_count = redis.call('incrby', KEYS[2], taken)
else
    redis.call('set', KEYS[2], taken, 'PX', expiry * 2)
    current_count = taken
    current_ttl = expiry * 2
end
return {taken, previous_count, previous_ttl, current_count, current_ttl}
"""
# The default lease: 1 % of the limit, at most this many slots (see the module doc).
_LEASE_MAX = 64
_LEASES_MAX = 8192
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
    lease: int = 1

    @classmethod
    def build(cls, route: str, index: int, rule: RateLimitRule) -> CompiledLimit:
        """Compile rule number ``index`` of ``route``."""
        item = parse_limit(rule.limit)
        lease = rule.lease
        if lease is None:
            lease = max(1, min(_LEASE_MAX, item.amount // 100))
        return cls(
            rule=rule,
            item=item,
            bucket=f"{route}:{rule.name or index}",
            header=rule.header.lower().encode() if rule.header else None,
            lease=min(lease, item.amount),
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
        ip = clients.client_ip(scope)
        # IPv4 (no ':') is its own key: the common case costs no call.
        return "ip:" + (rate_limit_key(ip, self.rule.ipv6_prefix) if ":" in ip else ip)


def _decision(
    allowed: bool,
    amount: int,
    period: int,
    previous: int,
    previous_ttl: float,
    current: int,
    current_ttl: float,
) -> RateLimitDecision:
    """What ``limits``' ``get_window_stats`` says of a sliding window's two counts (after
    the hit): the remaining count and the seconds until a slot frees up."""
    weighted = previous * previous_ttl / period + current
    reset_in = math.inf
    if previous:
        reset_in = previous_ttl % (period / previous)
    if current:
        reset_in = min(reset_in, current_ttl % period)
    return RateLimitDecision(
        allowed=allowed,
        limit=amount,
        remaining=max(0, amount - math.floor(weighted)),
        reset_after=0.0 if math.isinf(reset_in) else reset_in,
        window=period,
    )


class MemoryWindows:
    """Sliding-window counters in this process: ``limits``' algorithm without its locks.

    As ``limits``' memory storage with ``SlidingWindowCounterRateLimiter``: windows are
    aligned to multiples of the period on ``clock`` (wall time), a hit is refused when
    ``floor(previous * previous_ttl / period + current) + 1 > limit``, and the remaining
    count and the reset time are worked out the same way. The gateway's requests share one
    event loop, so a hit is one synchronous step and needs no lock. Counts whose windows
    ended are dropped when their key is next counted, and all of them whenever the number
    of keys has doubled since the last sweep (memory stays within twice the live keys).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # (key, amount, period) -> [window index, previous window's count, current count]
        self._windows: dict[tuple[str, int, int], list[int]] = {}
        self._sweep_at = 1024

    def hit(self, key: str, amount: int, period: int) -> RateLimitDecision:
        """Count one request of ``key`` against ``amount`` per ``period`` seconds."""
        now = self.clock()
        index = math.floor(now / period)
        slot = (key, amount, period)
        counts = self._windows.get(slot)
        if counts is None:
            counts = self._windows[slot] = [index, 0, 0]
            if len(self._windows) >= self._sweep_at:
                self._sweep(now)
        elif counts[0] < index:  # a later window (a clock set back keeps the counts)
            counts[1] = counts[2] if counts[0] == index - 1 else 0
            counts[0], counts[2] = index, 0
        previous = counts[1]
        previous_ttl = (1 - (((now - period) / period) % 1)) * period if previous else 0.0
        allowed = math.floor(previous * previous_ttl / period + counts[2]) + 1 <= amount
        if allowed:
            counts[2] += 1
        current_ttl = (1 - ((now / period) % 1)) * period + period
        return _decision(allowed, amount, period, previous, previous_ttl, counts[2], current_ttl)

    def _sweep(self, now: float) -> None:
        """Drop every key whose counts can no longer weigh (both windows ended)."""
        self._windows = {
            slot: counts
            for slot, counts in self._windows.items()
            if counts[0] >= math.floor(now / slot[2]) - 1
        }
        self._sweep_at = max(1024, 2 * len(self._windows))

    def __len__(self) -> int:
        return len(self._windows)


@dataclass(slots=True)
class _Lease:
    """Slots of a shared window this gateway took and has not used (see the module doc)."""

    left: int
    until: float  # monotonic: the end of the Redis window they were counted in
    at: float  # monotonic: when they were taken
    decision: RateLimitDecision  # the window's numbers then (all the slots counted)

    def take(self, now: float) -> RateLimitDecision:
        """Use one slot: the decision of the request that uses it."""
        self.left -= 1
        decision = self.decision
        return RateLimitDecision(
            allowed=True,
            limit=decision.limit,
            remaining=min(decision.limit, decision.remaining + self.left),
            reset_after=max(0.0, decision.reset_after - (now - self.at)),
            window=decision.window,
        )


class EdgeLimiter:
    """The counters of one gateway: a memory store and, when configured, a Redis one.

    Kept across reloads (counts survive a config change, as do leased slots) and closed
    at shutdown.
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str = "flext-gw",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.monotonic = monotonic
        self._memory = MemoryWindows()
        # Redis key -> the slots this gateway leased in its current window.
        self._leases: dict[str, _Lease] = {}
        #: Round trips to Redis for shared limits (a lease saves them).
        self.round_trips = 0
        self._client: Any = None
        self._script: Any = None
        self._lean: RespConnection | None = None
        self._arguments: dict[str, tuple[bytes, bytes]] = {}
        self._pending: list[tuple[list[str], list[int], asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._store_errors: tuple[type[BaseException], ...] = ()
        if redis_url is not None:
            from redis.asyncio import Redis  # the redis extra, only when configured
            from redis.exceptions import RedisError

            self._store_errors = (RedisError, RedisReplyError, OSError)
            # Short timeouts: a dead Redis must cost milliseconds, not the request's budget.
            options = lean_url_options(redis_url)
            if options is not None:
                self._lean = RespConnection(options, _SLIDING)
            else:  # TLS or socket options: redis-py's client
                self._client = Redis.from_url(
                    redis_url, socket_connect_timeout=0.25, socket_timeout=0.25
                )
                self._script = self._client.register_script(_SLIDING)

    async def hit(self, limit: CompiledLimit, key: str) -> RateLimitDecision | StoreDown:
        """Count one request of ``key`` against ``limit``."""
        if limit.rule.store == "redis" and self.redis_url is not None:
            return await self._shared_hit(limit, key)
        return self._memory_hit(limit, key)

    def _memory_hit(self, limit: CompiledLimit, key: str) -> RateLimitDecision:
        item = limit.item
        return self._memory.hit(limit.bucket + "/" + key, item.amount, item.get_expiry())

    def _redis_key(self, limit: CompiledLimit, key: str) -> str:
        """The Redis key of ``limit`` for ``key``: one hash slot for both windows (Redis
        Cluster), as limits does; also the key of this gateway's lease."""
        return f"{{{self.prefix}:{limit.bucket}:{key}}}"

    def _spend_lease(self, current: str) -> RateLimitDecision | None:
        """Use a slot this gateway leased for the Redis key ``current``; None when it holds
        none whose window goes on (a lease whose window ended is dropped)."""
        lease = self._leases.get(current)
        if lease is None:
            return None
        now = self.monotonic()
        if now >= lease.until:
            del self._leases[current]  # its window ended: the slots are Redis's past
            return None
        if lease.left == 1:
            del self._leases[current]
        return lease.take(now)

    def ready(self, limit: CompiledLimit, key: str) -> bool:
        """Whether :meth:`hit_now` can count ``key`` without waiting: a memory limit, or
        a Redis one with a slot this gateway leased (and whose window goes on)."""
        if limit.rule.store != "redis" or self.redis_url is None:
            return True
        lease = self._leases.get(self._redis_key(limit, key))
        return lease is not None and self.monotonic() < lease.until

    def hit_now(self, limit: CompiledLimit, key: str) -> RateLimitDecision:
        """:meth:`hit` for a ``key`` that :meth:`ready` said is counted without waiting."""
        if limit.rule.store != "redis" or self.redis_url is None:
            return self._memory_hit(limit, key)
        decision = self._spend_lease(self._redis_key(limit, key))
        assert decision is not None  # ready() said a slot is held, in this same step
        return decision

    async def _shared_hit(self, limit: CompiledLimit, key: str) -> RateLimitDecision | StoreDown:
        item = limit.item
        expiry = item.get_expiry()
        current = self._redis_key(limit, key)
        leases = self._leases
        if leases:
            spent = self._spend_lease(current)
            if spent is not None:
                return spent
        self.round_trips += 1
        try:
            if self._lean is not None:
                arguments = self._arguments.get(current)
                if arguments is None:  # encoded once per counted key (a bounded memo)
                    encoded = current.encode()
                    arguments = self._lean.arguments(
                        [encoded + b"/-1", encoded],
                        [b"%d" % item.amount, b"%d" % expiry, b"%d" % limit.lease],
                    )
                    if len(self._arguments) >= _ARGUMENTS_MAX:
                        self._arguments.clear()
                    self._arguments[current] = arguments
                reply = await self._lean.evalsha_encoded(arguments)
            else:
                reply = await self._eval(
                    [current + "/-1", current], [item.amount, expiry, limit.lease]
                )
        except self._store_errors as exc:
            _log.warning("rate limit store unreachable", bucket=limit.bucket, error=repr(exc))
            return StoreDown(closed=limit.rule.on_store_error == "closed")
        taken, previous, previous_ms, count, current_ms = reply
        decision = _decision(
            taken > 0, item.amount, expiry, previous, previous_ms / 1000, count,
            current_ms / 1000,
        )  # fmt: skip
        # The window the slots were counted in ends when its key's TTL (set to two
        # periods when it began) is down to one period.
        window_left = (current_ms - expiry * 1000) / 1000
        if taken > 1 and window_left > 0:
            now = self.monotonic()
            held = leases.get(current)  # requests that asked at the same moment
            if held is not None and now < held.until:
                held.left += taken - 1
            else:
                if len(leases) >= _LEASES_MAX:
                    self._sweep_leases(now)
                leases[current] = _Lease(taken - 1, now + window_left, now, decision)
            return RateLimitDecision(
                allowed=True,
                limit=item.amount,
                remaining=min(item.amount, decision.remaining + taken - 1),
                reset_after=decision.reset_after,
                window=decision.window,
            )
        return decision

    def _sweep_leases(self, now: float) -> None:
        """Drop the leases whose windows ended; all of them if none had (memory bound)."""
        live = {key: lease for key, lease in self._leases.items() if now < lease.until}
        self._leases = live if len(live) < _LEASES_MAX else {}

    async def _eval(self, keys: list[str], args: list[int]) -> Any:
        """Run the script for ``keys``; calls made in the same loop turn share one pipeline.

        Under load many requests reach their limit check in the same event-loop turn:
        sending their scripts in one pipeline costs one write and one read instead of one
        round trip each. Every script still runs atomically on its own keys.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[list[str], list[int], asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys, args, _ in batch:
                    await self._script(keys=keys, args=args, client=pipe)
                replies = await pipe.execute(raise_on_error=False)
        except self._store_errors as exc:
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request was cancelled meanwhile
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        """Close the Redis client, if any."""
        if self._lean is not None:
            await self._lean.aclose()
        if self._client is not None:
            await self._client.aclose()


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
