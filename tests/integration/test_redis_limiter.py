"""RedisRateLimiter against a real redis-server: atomic shared limits and safe fallback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
import structlog

from flext_api import ErrorCode, RateLimitConfig
from flext_api._errors import ConfigError
from flext_api.resilience import RateLimitWaited, RedisRateLimiter, ResilienceEvent
from flext_api.testing import FakeClock
from tests.servers.redis_server import RedisServer, redis_server_binary

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"flext-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[list[RedisRateLimiter]]:
    """Three limiters on separate connections, like three processes sharing a limit.

    Their clients wait up to 30 s for Redis: these tests are about the shared limit, and
    a starved machine must not push them onto the local fallback (its own tests below).
    """
    prefix = _prefix()
    clients = [
        aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=30, socket_timeout=30)
        for _ in range(3)
    ]
    made = [RedisRateLimiter(client, rate=10.0, burst=5, prefix=prefix) for client in clients]
    yield made
    for limiter in made:
        await limiter.aclose()
    for client in clients:
        await client.aclose()


async def test_concurrent_acquirers_never_exceed_the_shared_limit(
    limiters: list[RedisRateLimiter],
) -> None:
    """150 callers across 3 clients: never more slots than burst + rate x the time taken."""
    started = time.monotonic()
    deadline = started + 0.95
    results = await asyncio.gather(*(limiters[i % 3].acquire("api", deadline) for i in range(150)))
    elapsed = time.monotonic() - started
    granted = [r for r in results if r.is_success]
    refused = [r for r in results if r.is_failure]
    # Slots at 0 (x5, the burst), then 0.1 s apart. Callers that reach Redis within 0.95 s
    # share 5 + 9 slots; on a starved machine the scripts may run spread over a longer
    # time, and the limit then rightly grants rate x that time. A non-atomic
    # read-then-write would hand one slot to several callers and exceed both bounds.
    assert 5 <= len(granted) <= 5 + int(max(elapsed, 0.95) * 10.0) + 1
    assert all(r.error_code is ErrorCode.RATE_LIMITED for r in refused)
    assert all(r.exception is not None and r.exception.retry_after for r in refused)
    assert not any(limiter.using_fallback for limiter in limiters)


async def test_waiters_are_spaced_by_the_interval(redis_server: RedisServer) -> None:
    """Past the burst, callers are released one interval apart (within timer slack)."""
    events: list[ResilienceEvent] = []
    limiter = RedisRateLimiter(
        redis_server.url, rate=10.0, burst=5, prefix=_prefix(), hooks=[events.append]
    )
    started = time.monotonic()

    async def released_after() -> float:
        assert (await limiter.acquire("spaced")).is_success
        return time.monotonic() - started

    try:
        released = sorted(await asyncio.gather(*(released_after() for _ in range(8))))
    finally:
        await limiter.aclose()
    # Lower bounds only: a busy machine can release a caller later, never earlier.
    # (The 1 ms allows for Redis's and this process's clocks reading a tick apart.)
    assert [
        after >= floor - 0.001
        for after, floor in zip(released[4:], (0.0, 0.1, 0.2, 0.3), strict=True)
    ] == [True] * 4
    assert len(events) == 3 and all(isinstance(e, RateLimitWaited) for e in events)


async def test_a_server_pause_is_shared(limiters: list[RedisRateLimiter]) -> None:
    """Retry-After fed to one client pauses the key for every client."""
    now = time.monotonic()
    await limiters[2].afeedback("paused", now, throttled=True)  # no hint: local slow-down
    assert limiters[2].local.rate_factor("paused", now) == 0.5
    await limiters[0].afeedback("paused", now, retry_after=2.0)
    result = await limiters[1].acquire("paused", now + 1.0)
    assert result.error_code is ErrorCode.RATE_LIMITED
    assert result.exception is not None
    assert result.exception.retry_after == pytest.approx(2.0, abs=0.1)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def test_falls_back_to_local_limits_and_warns_once() -> None:
    """Redis unreachable: the local limiter decides, and one warning is logged."""
    limiter = RedisRateLimiter(_dead_url(), rate=1000.0, retry_interval=0.001)
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                assert (await limiter.acquire("k")).is_success
                await asyncio.sleep(0.002)  # past retry_interval: Redis is tried again
            await limiter.afeedback("k", time.monotonic(), retry_after=0.001)
    finally:
        await limiter.aclose()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "falling back to the local limiter" in warnings[0]["event"]
    assert "ConnectionError" in warnings[0]["error"]


def _fallback(limiter: RedisRateLimiter) -> bool:
    return limiter.using_fallback


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    """A bare redis-server on ``port`` (the fixture class always picks a new port)."""
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, so it can be stopped."""
    with RedisServer(redis_server_binary()) as server:
        yield server


async def test_outage_and_recovery(private_redis: RedisServer) -> None:
    """Redis stops: fallback with a warning; it comes back: shared limits resume."""
    port = private_redis.port
    limiter = RedisRateLimiter(private_redis.url, rate=1000.0, retry_interval=0.05)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        with structlog.testing.capture_logs() as logs:
            assert (await limiter.acquire("k")).is_success
            modes = [limiter.using_fallback]
            private_redis.stop()
            assert (await limiter.acquire("k")).is_success
            modes.append(limiter.using_fallback)
            assert (await limiter.acquire("k")).is_success  # within retry_interval: local
            assert modes == [False, True]
            assert "local fallback" in repr(limiter)
            restarted = _start_redis(port)
            for _ in range(100):
                await asyncio.sleep(0.06)
                if (await limiter.acquire("k")).is_success and not limiter.using_fallback:
                    break
            assert not _fallback(limiter)
            assert repr(limiter) == "<RedisRateLimiter 1000/s burst=1 [redis]>"
    finally:
        await limiter.aclose()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(10)
    levels = [entry["log_level"] for entry in logs]
    assert levels.count("warning") == 1
    assert any("reachable again" in entry["event"] for entry in logs)


async def test_from_config_needs_a_url(redis_server: RedisServer) -> None:
    """from_config uses redis_url; without one it is a ConfigError."""
    limiter = RedisRateLimiter.from_config(
        RateLimitConfig(enabled=True, rate=3.0, burst=2, redis_url=redis_server.url)
    )
    assert (limiter.rate, limiter.burst) == (3.0, 2)
    await limiter.aclose()
    with pytest.raises(ConfigError, match="redis_url"):
        RedisRateLimiter.from_config(RateLimitConfig(enabled=True))


def test_invalid_settings() -> None:
    """A bad URL is a ConfigError; a non-positive retry interval a ValueError."""
    with pytest.raises(ConfigError, match="invalid redis URL"):
        RedisRateLimiter("http://not-redis")
    with pytest.raises(ValueError, match="retry_interval"):
        RedisRateLimiter("redis://127.0.0.1:1/0", retry_interval=0)


async def test_a_client_passed_in_stays_open(redis_server: RedisServer) -> None:
    """A redis client given by the caller is used and left open by aclose()."""
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(redis_server.url)
    limiter = RedisRateLimiter(client, rate=100.0, prefix=_prefix())
    assert (await limiter.acquire("k")).value == 0.0
    await limiter.aclose()
    assert await client.ping()
    await client.aclose()


class _LateReplyClock(FakeClock):
    """A fake clock that jumps 10 s on its n-th read: a reply that came back late."""

    def __init__(self, jump_on_read: int) -> None:
        super().__init__()
        self.reads_left = jump_on_read

    def monotonic(self) -> float:
        self.reads_left -= 1
        if self.reads_left == 0:
            self.advance(10.0)
        return super().monotonic()


async def test_a_slot_granted_past_the_deadline_is_refused(redis_server: RedisServer) -> None:
    """A late reply whose slot lies past the deadline is RATE_LIMITED, not slept on."""
    # Reads: the first acquire's start and Redis check, the deadline below, then the
    # second acquire's start and its Redis check (the 5th: the reply comes 10 s late).
    clock = _LateReplyClock(jump_on_read=5)
    limiter = RedisRateLimiter(redis_server.url, rate=1.0, burst=1, prefix=_prefix(), clock=clock)
    try:
        assert (await limiter.acquire("k")).is_success
        late = await limiter.acquire("k", deadline=clock.monotonic() + 5.0)
    finally:
        await limiter.aclose()
    assert late.error_code is ErrorCode.RATE_LIMITED
    assert "past the deadline" in (late.error or "")
    assert clock.sleeps == []


async def test_a_malformed_script_reply_falls_back_to_local_limits() -> None:
    """A reply that is not the script's answer is handled like Redis down, not raised."""
    limiter = RedisRateLimiter(_dead_url(), rate=1000.0, prefix=_prefix())

    async def garbage_script(keys: list[str], args: list[int]) -> object:
        return [b"OK"]

    limiter._acquire_script = garbage_script  # type: ignore[assignment]
    try:
        with structlog.testing.capture_logs() as logs:
            result = await limiter.acquire("k")
    finally:
        await limiter.aclose()
    assert result.is_success
    assert limiter.using_fallback
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "unexpected reply" in warnings[0]["error"]


async def test_an_endless_server_pause_is_bounded(redis_server: RedisServer) -> None:
    """An infinite or years-long hint pauses the shared key for max_pause, no more."""
    limiter = RedisRateLimiter(redis_server.url, rate=10.0, prefix=_prefix())
    other = RedisRateLimiter(redis_server.url, rate=10.0, prefix=limiter.prefix)
    try:
        now = time.monotonic()
        await limiter.afeedback("k", now, retry_after=float("inf"))
        await limiter.afeedback("years", now, retry_after=10 * 365 * 86400.0)
        endless = await other.acquire("k", time.monotonic() + 1.0)
        years = await other.acquire("years", time.monotonic() + 1.0)
    finally:
        await limiter.aclose()
        await other.aclose()
    for result in (endless, years):
        assert result.error_code is ErrorCode.RATE_LIMITED
        assert result.exception is not None
        # Bounded by max_pause (60 s), not years; wide below so a slow machine passes.
        assert result.exception.retry_after is not None
        assert 30.0 < result.exception.retry_after <= 61.0
