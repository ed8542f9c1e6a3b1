"""The GCRA limiter with its state in Redis, for limits shared across processes.

The whole decision (read the TAT, compute the slot, refuse or reserve, write the TAT)
runs as ONE Lua script, so it is atomic however many processes call it; the time is
the Redis server's own clock (``TIME``), so hosts with skewed clocks agree. The script
only reserves a slot; the caller sleeps on its own clock until then, exactly like the
local :class:`~flext_api.resilience.RateLimiter` (the same FIFO, no-herd property).

Shared state must degrade safely (research notes §4.12; pybreaker#24/#26 for what
goes wrong otherwise): when Redis is unreachable the limiter falls back to a local
:class:`RateLimiter` with the same settings, logs one warning per outage (structlog),
and tries Redis again after ``retry_interval`` seconds. A Redis that does not answer
before the caller's deadline (on the real clock) counts as unreachable too: a hung
server must not hold callers past their deadlines. Keys carry a ``prefix`` so two
limiters never collide (pybreaker#88).

Needs the ``redis`` extra (redis-py asyncio).
"""

from __future__ import annotations

import asyncio
import builtins
import math
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from .._clock import Clock, SystemClock, get_clock
from .._config import RateLimitConfig
from .._errors import ConfigError, RateLimitedError
from .._result import FlextResult
from ._events import Emitter, EventHook, RateLimitWaited
from ._limiter import RateLimiter

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter"]

_log = structlog.get_logger("flext_api.resilience")

_US = 1_000_000

# Times are integer microseconds: exact in Lua's doubles (2^53 us is ~285 years).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local slot = tat - tau
if slot < now then slot = now end
local wait = slot - now
if max_wait >= 0 and wait > max_wait then
  return {0, wait}
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, wait}
"""

# Pause: no slot before now + pause (the TAT moves to pause + tau, never backwards).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local floor = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < floor then
  local ttl_ms = math.ceil((floor - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%d', floor), 'PX', ttl_ms)
end
return 1
"""


def _acquire_reply(reply: Any) -> tuple[bool, int] | None:
    """``(granted, wait in microseconds)`` from the acquire script, or None if malformed."""
    if not isinstance(reply, list | tuple) or len(reply) != 2:
        return None
    granted, wait_us = reply
    if isinstance(granted, bool) or isinstance(wait_us, bool):
        return None
    if not isinstance(granted, int) or not isinstance(wait_us, int):
        return None
    if granted not in (0, 1) or wait_us < 0:
        return None
    return bool(granted), wait_us


class RedisRateLimiter:
    """GCRA limiter shared through Redis; same API as :class:`RateLimiter`.

    ``redis`` is a ``redis.asyncio.Redis`` client (kept open: you own it) or a URL
    (the limiter opens a client with short timeouts and closes it in :meth:`aclose`).
    """

    def __init__(
        self,
        redis: aioredis.Redis | str,
        rate: float = 10.0,
        burst: int = 1,
        *,
        prefix: str = "flext_api:ratelimit:",
        adaptive: bool = True,
        max_pause: float = 60.0,
        retry_interval: float = 5.0,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        if not 0 < retry_interval < math.inf:
            # NaN would never fall back (every call waits on a dead Redis), infinity
            # would never try Redis again after the first outage.
            raise ValueError(
                f"retry_interval must be a finite number > 0 seconds, got {retry_interval!r}"
            )
        self.local = RateLimiter(
            rate, burst, adaptive=adaptive, max_pause=max_pause, clock=clock, hooks=hooks
        )
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._clock = get_clock(clock)
        self._emitter = Emitter(hooks)
        self._owns_client = isinstance(redis, str)
        if isinstance(redis, str):
            try:
                redis = aioredis.Redis.from_url(
                    redis, socket_connect_timeout=0.5, socket_timeout=0.5
                )
            except ValueError as exc:
                raise ConfigError(f"invalid redis URL for the rate limiter: {exc}") from exc
        self.redis = redis
        self._acquire_script: AsyncScript = redis.register_script(_ACQUIRE)
        self._pause_script: AsyncScript = redis.register_script(_PAUSE)
        self._down_until = -math.inf  # while in the future, use the local limiter
        self._warned = False

    @classmethod
    def from_config(
        cls,
        config: RateLimitConfig,
        *,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> RedisRateLimiter:
        """A limiter on ``config.redis_url`` with ``config``'s rate, burst and adaptivity."""
        if not config.redis_url:
            raise ConfigError("rate_limit.redis_url is not set; cannot build a Redis limiter")
        return cls(
            config.redis_url,
            config.rate,
            config.burst,
            adaptive=config.adaptive,
            max_pause=config.max_pause,
            prefix=config.redis_prefix,
            clock=clock,
            hooks=hooks,
        )

    @property
    def rate(self) -> float:
        """Configured calls per second."""
        return self.local.rate

    @property
    def burst(self) -> int:
        """Calls allowed at once."""
        return self.local.burst

    @property
    def using_fallback(self) -> bool:
        """True while Redis is considered down and the local limiter decides."""
        return self._clock.monotonic() < self._down_until

    # -- Redis availability ------------------------------------------------------------------
    def _redis_down(self, exc: BaseException) -> None:
        self._down_until = self._clock.monotonic() + self.retry_interval
        if not self._warned:
            self._warned = True
            _log.warning(
                "redis rate limiter unreachable; falling back to the local limiter",
                error=f"{type(exc).__name__}: {exc}",
                retry_in=self.retry_interval,
            )

    def _redis_up(self) -> None:
        if self._warned:
            self._warned = False
            _log.info("redis rate limiter reachable again; shared limits restored")

    async def _call(
        self, script: AsyncScript, key: str, *args: int, deadline: float | None = None
    ) -> Any:
        """Run ``script`` for ``key``; None when Redis is down (the caller falls back).

        On the real clock the round trip is bounded by ``deadline``: a Redis that hangs
        (stopped, a black-holed network, a client without socket timeouts) counts as
        down once the caller's time is up, instead of holding the caller past its
        deadline; a caller whose deadline has already passed decides locally. A fake
        clock does not move during real I/O, so it bounds nothing.
        """
        clock = self._clock
        if clock.monotonic() < self._down_until:
            return None
        bounded = deadline is not None and deadline != math.inf and isinstance(clock, SystemClock)
        left = math.inf if deadline is None else deadline - clock.monotonic()
        if bounded and not left > 0:
            # No time for a round trip at all: decide this one call locally, without
            # calling Redis down for it.
            return None
        try:
            pending = script(keys=[self.prefix + key], args=list(args))
            reply = await (self._bounded(pending, left) if bounded else pending)
        except (RedisError, OSError) as exc:  # builtins.TimeoutError from _bounded too
            self._redis_down(exc)
            return None
        self._redis_up()
        return reply

    @staticmethod
    async def _bounded(pending: Awaitable[Any], timeout: float) -> Any:
        """``await pending`` for at most ``timeout`` real seconds (else TimeoutError)."""
        task = asyncio.ensure_future(pending)
        try:
            # The loop's timer, not clock.sleep: the testing switch must not cut it short.
            await asyncio.wait({task}, timeout=max(0.0, timeout))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # read, so asyncio never logs it as unretrieved
        if task.cancelled():
            raise builtins.TimeoutError("redis did not answer before the deadline")
        return task.result()

    # -- API ------------------------------------------------------------------------------------
    async def acquire(self, key: str, deadline: float | None = None) -> FlextResult[float]:
        """Wait for ``key``'s next shared slot; falls back to the local limiter."""
        clock = self._clock
        start = clock.monotonic()
        local = self.local
        interval = 1.0 / (local.rate * local.rate_factor(key, start))
        if deadline is None or deadline == math.inf:
            max_wait = -1  # no limit (an infinite deadline has no integer microseconds)
        else:
            left = deadline - start
            max_wait = max(0, int(left * _US)) if left > 0 else 0
        reply = await self._call(
            self._acquire_script,
            key,
            round(interval * _US),
            round((local.burst - 1) * interval * _US),
            max_wait,
            deadline=deadline,
        )
        if reply is None:
            return await local.acquire(key, deadline)
        parsed = _acquire_reply(reply)
        if parsed is None:
            # Not the script's answer (a proxy or another server on that address): the
            # shared limit cannot be trusted, so decide locally as when Redis is down.
            self._redis_down(ValueError(f"unexpected reply from the limiter script: {reply!r:.80}"))
            return await local.acquire(key, deadline)
        granted, wait_us = parsed
        wait = wait_us / _US
        if not granted:
            return FlextResult.fail(
                RateLimitedError(
                    f"shared rate limit for {key!r} needs a {wait:.3g}s wait but the "
                    f"deadline leaves {max_wait / _US:.3g}s",
                    retry_after=wait,
                    details={"key": key, "rate": local.rate, "shared": True},
                )
            )
        if wait > 0 and deadline is not None and clock.monotonic() + wait > deadline:
            # Redis measured the deadline as time left when the script ran, on its own
            # clock; a reply that came late (a busy loop or connection) can grant a slot
            # past the deadline. The deadline is an instant on this limiter's clock: hold
            # the slot to it here. The unused slot is the same accepted hole as below.
            return FlextResult.fail(
                RateLimitedError(
                    f"shared rate limit for {key!r} gave a slot {wait:.3g}s away, past the "
                    "deadline",
                    retry_after=wait,
                    details={"key": key, "rate": local.rate, "shared": True},
                )
            )
        if wait > 0:
            # A caller cancelled here leaves its slot unused: giving it back would need a
            # second round trip and could race other processes, so the hole is accepted.
            await clock.sleep(wait)
            waited = clock.monotonic() - start
            if self._emitter.active:
                self._emitter.emit(RateLimitWaited(key, waited))
            return FlextResult.ok(waited)
        return FlextResult.ok(0.0)

    async def afeedback(
        self,
        key: str,
        now: float,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        reason: str = "",
    ) -> None:
        """Share a server pause through Redis; slow this process down on a 429."""
        self.local.feedback(key, now, retry_after=retry_after, throttled=throttled, reason=reason)
        if self.local.adaptive and retry_after is not None and retry_after > 0:
            interval = 1.0 / self.local.rate
            # The same bound as the local pause: an "infinite" hint cannot become an
            # integer, and a far-future one must not stall every process for years.
            pause = min(retry_after, self.local.max_pause)
            await self._call(
                self._pause_script,
                key,
                round(pause * _US),
                round((self.local.burst - 1) * interval * _US),
            )

    async def aclose(self) -> None:
        """Close the Redis client if this limiter opened it."""
        if self._owns_client:
            await self.redis.aclose()

    def __repr__(self) -> str:
        mode = "local fallback" if self.using_fallback else "redis"
        return f"<RedisRateLimiter {self.rate:g}/s burst={self.burst} [{mode}]>"
