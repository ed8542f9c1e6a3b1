"""The default rate-limit strategy never lets more than the limit through in any window.

``limits`` reads ``time.time()`` itself, so the fake clock is put in its place in the
modules that read it (the storages and :mod:`flext_api.server._ratelimit`).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import memory as limits_memory
from limits.aio.storage.redis import redispy as limits_redis

from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import RateLimitService
from flext_api.server import _ratelimit as server_ratelimit
from flext_api.server._logging import make_json_logger
from flext_api.server._ratelimit import parse_limit
from flext_api.testing import FakeClock
from tests.servers.redis_server import RedisServer

#: Half a second before a multiple of 60 s since the epoch: a window edge of every
#: per-minute counter that aligns its windows to the epoch (as ``limits`` does).
_BEFORE_EDGE = 28_333_334 * 60 - 0.5


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake wall clock read by ``limits`` and by the rate-limit service."""
    fake = FakeClock(wall_start=_BEFORE_EDGE)
    fake_time = types.SimpleNamespace(time=fake.time)
    for module in (limits_memory, limits_redis, server_ratelimit):
        monkeypatch.setattr(module, "time", fake_time)
    return fake


@pytest.fixture(params=["memory", "redis"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[RateLimitService]:
    """A service with the default strategy, on memory and on a real Redis."""
    if request.param == "memory":
        config = ServerRateLimitConfig()
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        config = ServerRateLimitConfig(storage_uri=redis.url, key_prefix=f"edge-{uuid.uuid4().hex}")
    service = RateLimitService(config, logger=make_json_logger())
    yield service
    await service.aclose()


async def test_default_strategy_is_exact() -> None:
    """The default strategy is the moving window (a log, not an estimate)."""
    assert ServerRateLimitConfig().strategy == "moving-window"


async def test_calls_straddling_a_window_edge(clock: FakeClock, service: RateLimitService) -> None:
    """1/minute: a second call one second later, across a window edge, is refused."""
    item = parse_limit("1/minute")
    first = await service.hit("edge", item, "198.51.100.7")
    clock.advance(1.0)
    second = await service.hit("edge", item, "198.51.100.7")
    assert (first.allowed, second.allowed) == (True, False)


async def test_refusal_says_when_room_returns(clock: FakeClock, service: RateLimitService) -> None:
    """The refusal's reset is when the first call leaves the window (59 s later)."""
    item = parse_limit("1/minute")
    await service.hit("edge", item, "198.51.100.7")
    clock.advance(1.0)
    refused = await service.hit("edge", item, "198.51.100.7")
    assert (refused.remaining, refused.retry_after) == (0, 59)


async def test_call_allowed_once_the_window_has_passed(
    clock: FakeClock, service: RateLimitService
) -> None:
    """Once the first call has left the window, the next one is allowed again."""
    item = parse_limit("1/minute")
    await service.hit("edge", item, "198.51.100.7")
    clock.advance(60.5)
    assert (await service.hit("edge", item, "198.51.100.7")).allowed
