"""Shared rate limits through a real redis-server: two gateway processes, Redis outages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.gateway.conftest import GatewayProcess, LiveGateway, run_gateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

__all__ = ["origin", "run_gateway"]

Run = Callable[[dict[str, Any]], LiveGateway]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone (the test may stop it)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def redis_limited(origin_url: str, redis_url: str, limit: str, **rule: Any) -> dict[str, Any]:
    """A gateway whose catch-all route has one Redis-backed limit per client IP."""
    config = edge_config(
        origin_url,
        edge={"redis_url": redis_url},
        rate_limits=[{"limit": limit, "key": "ip", "store": "redis", **rule}],
    )
    del config["admin"]
    return config


async def _statuses(urls: list[str], count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            async with session.get(urls[i % len(urls)] + "/echo") as response:
                await response.read()
                return response.status

        out: list[int] = []
        for start in range(0, count, 20):
            out += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 20))))
        return out


async def test_two_gateway_processes_share_one_limit(
    origin: EdgeOrigin, own_redis: RedisServer, tmp_path: Path
) -> None:
    """Two gateway processes on one Redis admit the limit once between them (within 5 %)."""
    config = redis_limited(origin.url, own_redis.url, "100/minute")
    gateways = []
    try:
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            gateways.append(GatewayProcess(config, tmp_path / name))
        for gateway in gateways:
            gateway.wait_ready()
        statuses = await _statuses([g.url for g in gateways], 300)
    finally:
        for gateway in gateways:
            gateway.stop()
    admitted = statuses.count(200)
    assert 95 <= admitted <= 105, admitted
    assert statuses.count(429) == 300 - admitted


@pytest.mark.parametrize(("lease", "leased"), [(None, 9), (1, 0)], ids=["default-lease", "lease-1"])
async def test_redis_down_follows_each_limits_fail_mode(
    origin: EdgeOrigin, own_redis: RedisServer, run_gateway: Run, lease: int | None, leased: int
) -> None:
    """Redis stopped mid-run: once the slots already leased are spent (1000/minute: the
    first request took 10 and used one), fail-open routes pass and fail-closed ones
    answer 503, never 500."""
    rule = {} if lease is None else {"lease": lease}
    config = redis_limited(origin.url, own_redis.url, "1000/minute", on_store_error="open", **rule)
    closed_rule = {"limit": "1000/minute", "store": "redis", "on_store_error": "closed", **rule}
    config["routes"].insert(
        0,
        {"name": "strict", "match": {"path_prefix": "/c"}, "cluster": "svc",
         "rate_limits": [closed_rule]},
    )  # fmt: skip
    config["admin"] = {"token": "t0ken"}
    gw = run_gateway(config)
    before = (await fetch(gw.url + "/echo"))[0], (await fetch(gw.url + "/c/x?cc=no-store"))[0]
    own_redis.stop()
    opened = [(await fetch(gw.url + "/echo"))[0] for _ in range(leased + 1)]
    closed = [(await fetch(gw.url + "/c/x?cc=no-store"))[0] for _ in range(leased + 1)]
    metrics = gw.gateway.metrics.render().decode()
    assert before == (200, 200)
    assert opened == [200] * (leased + 1)
    assert closed == [200] * leased + [503]
    # Only the requests past the leased slots asked Redis.
    assert 'gateway_ratelimit_store_errors_total{mode="open",route="all"} 1.0' in metrics
    assert 'gateway_ratelimit_store_errors_total{mode="closed",route="strict"} 1.0' in metrics


async def test_shared_limit_headers_count_down(
    origin: EdgeOrigin, redis_server: Any, run_gateway: Run
) -> None:
    """A Redis limit reports RateLimit-Remaining per answer, then refuses with Retry-After."""
    gw = run_gateway(redis_limited(origin.url, redis_server.url, "3/minute"))
    answers = [await fetch(gw.url + "/echo") for _ in range(4)]
    remaining = [a[1].get("RateLimit-Remaining") for a in answers]
    assert [a[0] for a in answers] == [200, 200, 200, 429]
    assert remaining == ["2", "1", "0", "0"]
    assert int(answers[3][1]["Retry-After"]) >= 1
