"""Guarded cache hits whose auth and limits are known at once: answered without a task.

A bearer token the gateway verified already and limits counted in memory or on slots
it leased from Redis need no wait: the protocol answers such a hit in the same step
(``Edge.gated_now``), and leaves a refusal to the chain with what was decided, as the
awaited path (``Edge.hit_later``) does. Real listener, origin and redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, origin
from tests.integration.gateway.test_answer_now import (
    _count_app_calls,
    _exchange,
    count_edge_calls,
)
from tests.integration.gateway.test_gated_hits import (
    SECRET,
    _get,
    _header,
    _remaining,
    _settled,
    _token,
    _warm,
)
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


def _config(origin_url: str, redis_url: str | None, rule: dict[str, Any], **auth: Any) -> Any:
    edge: dict[str, Any] = {"auth": {"jwt": {"jwt_secret": SECRET}}}
    if redis_url is not None:
        edge["redis_url"] = redis_url
    return edge_config(
        origin_url,
        edge=edge,
        cache=True,
        auth={"methods": ["jwt"], **auth},
        rate_limits=[{"key": "consumer", **rule}],
    )


def _count_later(gw: LiveGateway) -> list[int]:
    """Count the hits offered to the awaited path (``hit_later``) from now on."""
    return count_edge_calls(gw, "hit_later")


async def test_leased_slots_answer_at_once(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """A remembered token and a leased Redis slot: no task, no round trip; a request
    finds the lease empty only once per lease (10 slots at 1000/minute)."""
    gw = run_gateway(
        _config(origin.url, redis_server.url, {"limit": "1000/minute", "store": "redis"})
    )
    token = _token("now-1")
    await _warm(gw, origin, token)
    limiter: Any = gw.gateway.edge._limiter
    trips = limiter.round_trips
    later, calls = _count_later(gw), _count_app_calls(gw)
    answers = [(await _exchange(gw, _get(token), 1))[0] for _ in range(8)]
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    left = [_remaining(a) for a in answers]
    assert left == list(range(left[0], left[0] - 8, -1))  # one slot each, as per request
    assert calls == []
    assert len(later) == limiter.round_trips - trips <= 1


async def test_a_memory_limit_refusal_reaches_the_chain_once(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Counted at once in memory: the fourth request of 3/minute is the chain's 429,
    counted once, and the three before it never reach the chain."""
    gw = run_gateway(_config(origin.url, None, {"limit": "3/minute", "store": "memory"}))
    await _warm(gw, origin, _token("warm-now"))  # another consumer: another count
    token = _token("now-2")
    [first] = await _exchange(gw, _get(token), 1)  # verifies the token: the awaited path
    later, calls = _count_later(gw), _count_app_calls(gw)
    answers = [(await _exchange(gw, _get(token), 1))[0] for _ in range(3)]
    assert [a[9:12] for a in (first, *answers)] == [b"200", b"200", b"200", b"429"]
    assert [_remaining(a) for a in (first, *answers)] == [2, 1, 0, 0]
    assert _header(answers[-1], b"retry-after") is not None
    assert (len(later), len(calls)) == (0, 1)
    assert await _settled(gw, "gateway_ratelimit_rejections_total", limit="all:0") == 1.0


async def test_a_remembered_token_without_the_scope_gets_the_chains_403(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The scope is checked on the remembered identity too: each request is a 403 from
    the chain, none a hit, and no limit slot is taken."""
    gw = run_gateway(
        _config(origin.url, None, {"limit": "3/minute", "store": "memory"}, scopes=["admin"])
    )
    token = _token("now-3")
    answers = [(await _exchange(gw, _get(token), 1))[0] for _ in range(4)]
    assert [a[9:12] for a in answers] == [b"403"] * 4
    assert b'error="insufficient_scope"' in (_header(answers[-1], b"www-authenticate") or b"")
    assert await _settled(gw, "gateway_auth_rejections_total", status="403") == 4.0
    assert origin.hits["g"] == 0
