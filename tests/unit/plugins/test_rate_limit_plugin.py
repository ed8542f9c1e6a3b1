"""RateLimitPlugin: waits in the host's limiter and feeds throttling back."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, RateLimitConfig
from flext_api.client.plugins import RateLimitPlugin
from flext_api.resilience import RateLimiter
from flext_api.testing import FakeClock

from ._fakes import Upstream, get, ok, status_failure


def plugin(config: RateLimitConfig | None = None) -> tuple[RateLimitPlugin, FakeClock]:
    clock = FakeClock(start=0.0)
    return RateLimitPlugin(config or RateLimitConfig(enabled=True, rate=2.0), clock=clock), clock


async def test_calls_wait_for_their_slot() -> None:
    """At 2/s the second call to a host waits 0.5 s before it is sent."""
    limit, clock = plugin()
    upstream = Upstream([200])
    await limit.handle(get(), upstream)
    await limit.handle(get(), upstream)
    assert clock.sleeps == [0.5] and upstream.calls == 2


async def test_hosts_are_limited_separately() -> None:
    """Another host does not wait for the first one's slots."""
    limit, clock = plugin()
    upstream = Upstream([200])
    await limit.handle(get("http://a.example/"), upstream)
    await limit.handle(get("http://b.example/"), upstream)
    assert clock.sleeps == []


async def test_a_slot_past_the_deadline_is_rate_limited() -> None:
    """When the wait would pass request.deadline the call fails, unsent."""
    limit, _ = plugin()
    upstream = Upstream([200])
    await limit.handle(get(), upstream)
    request = get(deadline=0.1)
    result = await limit.handle(request, upstream)
    assert result.error_code is ErrorCode.RATE_LIMITED
    assert result.exception is not None and result.exception.request is request
    assert upstream.calls == 1


async def test_a_429_with_retry_after_pauses_the_host() -> None:
    """A 429 with Retry-After: 5 pauses the host's next call until then."""
    limit, clock = plugin()
    await limit.handle(get(), Upstream([status_failure(429, {"Retry-After": "5"})]))
    await limit.handle(get(), Upstream([200]))
    assert clock.sleeps == [5.0]
    assert isinstance(limit.limiter, RateLimiter)
    assert limit.limiter.rate_factor("api.example.com", clock.monotonic()) < 1.0


async def test_remaining_zero_pauses_until_the_reset() -> None:
    """RateLimit-Remaining: 0 on a 200 pauses the host until RateLimit-Reset."""
    limit, clock = plugin()
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}
    await limit.handle(get(), Upstream([ok(200, headers)]))
    await limit.handle(get(), Upstream([200]))
    assert clock.sleeps == [3.0]


async def test_a_503_without_hint_changes_nothing() -> None:
    """A 503 without Retry-After is not throttling feedback."""
    limit, _ = plugin()
    await limit.handle(get(), Upstream([503]))
    assert isinstance(limit.limiter, RateLimiter)
    assert limit.limiter.rate_factor("api.example.com", 0.0) == 1.0


async def test_plain_responses_and_errors_give_no_feedback() -> None:
    """A 200 without rate headers, or a transport error, leaves the limiter alone."""
    limit, clock = plugin(RateLimitConfig(enabled=True, rate=1000.0))
    await limit.handle(get(), Upstream([200]))
    await limit.handle(get(), Upstream([ErrorCode.CONNECT_ERROR]))
    await limit.handle(get(), Upstream([200]))
    assert clock.sleeps == [0.001, 0.001]


async def test_non_adaptive_ignores_throttling() -> None:
    """adaptive=False: a 429 with Retry-After does not pause the host."""
    limit, clock = plugin(RateLimitConfig(enabled=True, rate=1000.0, adaptive=False))
    await limit.handle(get(), Upstream([status_failure(429, {"Retry-After": "5"})]))
    await limit.handle(get(), Upstream([200]))
    assert clock.sleeps == [0.001]


async def test_disabled_config_passes_through() -> None:
    """An explicit RateLimitConfig(enabled=False) makes the plugin a pass-through."""
    limit, clock = plugin(RateLimitConfig(enabled=False, rate=0.001))
    upstream = Upstream([200])
    for _ in range(3):
        await limit.handle(get(), upstream)
    assert clock.sleeps == [] and upstream.calls == 3


async def test_default_plugin_is_on() -> None:
    """RateLimitPlugin() without a config limits with the default figures."""
    limit = RateLimitPlugin(clock=FakeClock())
    assert limit.config.enabled and limit.config.rate == 10.0
    assert repr(limit) == "<RateLimitPlugin <RateLimiter 10/s burst=1 [0 keys, 0 waiting]>>"


async def test_a_shared_limiter_is_not_closed_by_the_plugin() -> None:
    """A limiter passed in belongs to the caller; cleanup leaves it alone."""
    shared = RateLimiter(rate=5.0)
    limit = RateLimitPlugin(limiter=shared)
    await limit.cleanup()
    assert limit.limiter is shared


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0"])
async def test_redis_url_builds_a_shared_limiter(url: str) -> None:
    """With redis_url set the plugin builds a RedisRateLimiter and closes it."""
    limit = RateLimitPlugin(RateLimitConfig(enabled=True, redis_url=url))
    assert type(limit.limiter).__name__ == "RedisRateLimiter"
    await limit.cleanup()
