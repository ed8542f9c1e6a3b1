"""RedisRateLimiter against a hostile Redis: a hung server, infinite deadlines and
fallback settings that would never fall back (or never come back)."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
import structlog

from flext_api.resilience import RedisRateLimiter
from tests.servers.redis_server import RedisServer, redis_server_binary

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"flext-hostile:{uuid.uuid4().hex}:"


def _fallback(limiter: RedisRateLimiter) -> bool:
    return limiter.using_fallback


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, so it can be frozen."""
    with RedisServer(redis_server_binary()) as server:
        yield server


@pytest.mark.parametrize("deadline", [math.inf, -math.inf])
async def test_an_infinite_deadline_is_accepted(redis_server: RedisServer, deadline: float) -> None:
    """``deadline=inf`` means no limit and ``-inf`` one long passed: no OverflowError."""
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=30)
    limiter = RedisRateLimiter(client, rate=10.0, prefix=_prefix())
    try:
        result = await limiter.acquire("k", deadline)
        assert result.is_success
        assert not limiter.using_fallback  # a passed deadline does not call Redis down
    finally:
        await client.aclose()


@pytest.mark.parametrize("interval", [math.nan, math.inf, 0.0, -1.0])
def test_a_retry_interval_must_be_finite_and_positive(interval: float) -> None:
    """NaN never falls back, infinity never returns to Redis: both refused when built."""
    with pytest.raises(ValueError, match="retry_interval"):
        RedisRateLimiter("redis://127.0.0.1:1/0", retry_interval=interval)


async def test_a_hung_redis_does_not_hold_callers_past_their_deadline(
    own_redis: RedisServer,
) -> None:
    """Redis frozen, a client without socket timeouts: the caller falls back at its
    deadline (one warning) instead of waiting for Redis forever."""
    process = own_redis._process
    assert process is not None
    # No socket timeouts at all (redis-py 8 would default to 5 s, still past the deadline).
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=None)
    limiter = RedisRateLimiter(client, rate=1000.0, prefix=_prefix())
    try:
        assert (await limiter.acquire("k", time.monotonic() + 30)).is_success
        assert not limiter.using_fallback
        os.kill(process.pid, signal.SIGSTOP)
        try:
            with structlog.testing.capture_logs() as logs:
                async with asyncio.timeout(30):  # a guard: the old code hung here for good
                    result = await limiter.acquire("k", time.monotonic() + 0.05)
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert result.is_success  # the local limiter had a free slot
        assert _fallback(limiter)  # a call, so mypy does not keep the earlier narrowing
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert len(warnings) == 1
        assert "did not answer before the deadline" in warnings[0]["error"]
    finally:
        await client.aclose()
