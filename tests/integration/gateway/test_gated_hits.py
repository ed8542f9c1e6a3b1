"""Fresh cache hits behind edge auth and a Redis rate limit, answered without the chain.

Through a real gateway listener (httptools), a real origin and a real redis-server: the
protocol takes such a hit, awaits the limit and answers it (``Edge.hit_later``); the
answer is the chain's but for ``Age`` and the count left; and whatever it does not
answer - a refusal, an entry that went stale meanwhile, a client that left - reaches
the chain with what was already decided, so no request is counted twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, origin
from tests.integration.gateway.test_answer_now import _count_app_calls, _exchange
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]
SECRET = "a-test-secret-of-at-least-thirty-two-bytes!"
PATH = "/c/g?cc=public,max-age=600"


def _token(sub: str = "alice", secret: str = SECRET) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, secret, algorithm="HS256")


def _config(origin_url: str, redis_url: str, limit: str = "100/minute", **rule: Any) -> Any:
    return edge_config(
        origin_url,
        edge={"redis_url": redis_url, "auth": {"jwt": {"jwt_secret": SECRET}}},
        cache=True,
        auth={"methods": ["jwt"]},
        rate_limits=[{"limit": limit, "key": "consumer", "store": "redis", **rule}],
    )


def _get(token: str, *extra: str) -> bytes:
    lines = [f"GET {PATH} HTTP/1.1", "Host: gw", f"Authorization: Bearer {token}", *extra]
    return "\r\n".join([*lines, "", ""]).encode()


def _header(answer: bytes, name: bytes) -> bytes | None:
    for line in answer.split(b"\r\n"):
        if line.lower().startswith(name + b":"):
            return line.split(b":", 1)[1].strip()
    return None


def _steady(answer: bytes) -> bytes:
    """``answer`` without the lines that change from one answer to the next."""
    moving = (b"age:", b"ratelimit-remaining:", b"ratelimit-reset:", b"date:")
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(moving))


async def _warm(gw: LiveGateway, origin: EdgeOrigin, token: str) -> None:
    """Store the entry (a miss) and memoize it (a hit through the chain)."""
    for _ in range(100):
        [answer] = await _exchange(gw, _get(token), 1)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        cache: Any = gw.gateway.edge.cache
        if origin.hits["g"] == 1 and cache.hot is not None and len(cache.hot._entries) == 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the entry was never memoized")


def _remaining(answer: bytes) -> int:
    value = _header(answer, b"ratelimit-remaining")
    assert value is not None, answer
    return int(value)


async def test_a_guarded_hit_skips_the_chain_and_gets_its_answer(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """Answered without the chain, the hit is the chain's answer (but for the count left
    and Age); each request takes exactly one slot of the shared limit."""
    gw = run_gateway(_config(origin.url, redis_server.url))
    token = _token("guarded-1")
    await _warm(gw, origin, token)
    calls = _count_app_calls(gw)
    [first] = await _exchange(gw, _get(token, "X-Request-ID: rid-1"), 1)
    [second] = await _exchange(gw, _get(token), 1)
    assert calls == []
    edge: Any = gw.gateway.edge
    edge.hit_later = lambda *args: None  # the protocol declines: the chain answers
    [via_chain] = await _exchange(gw, _get(token, "X-Request-ID: rid-1"), 1)
    assert calls == [1]
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-request-id: rid-1\r\n" in first
    assert _steady(first) == _steady(via_chain)
    left = _remaining(first)
    assert [_remaining(a) for a in (first, second, via_chain)] == [left, left - 1, left - 2]
    assert origin.hits["g"] == 1


async def test_what_the_fast_path_decided_is_not_decided_again(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """An entry found stale once the limit answered: the chain serves the request with
    the limit's decision already taken (one slot, not two) and counts one hit."""
    gw = run_gateway(_config(origin.url, redis_server.url))
    token = _token("guarded-2")
    await _warm(gw, origin, token)
    cache: Any = gw.gateway.edge.cache
    cache.still_fresh = lambda key, hot: None  # stale by the time Redis answered
    calls = _count_app_calls(gw)
    before = await _settled(gw, "gateway_cache_requests_total", outcome="hit")
    [one] = await _exchange(gw, _get(token), 1)
    [two] = await _exchange(gw, _get(token), 1)
    assert len(calls) == 2  # both went on to the chain
    assert _remaining(two) == _remaining(one) - 1
    assert await _settled(gw, "gateway_cache_requests_total", outcome="hit") == before + 2


async def _settled(gw: LiveGateway, name: str, **labels: str) -> float:
    """The value of a series of route ``all`` once it stops moving (each answer is
    counted on the gateway's loop right after it is written)."""
    registry = gw.gateway.metrics.registry
    last = None
    for _ in range(20):
        value = registry.get_sample_value(name, {"route": "all", **labels}) or 0.0
        if value == last:
            return value
        last = value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} kept moving")


async def test_refusals_reach_the_chain_once(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """A bad token gets the chain's 401 and a spent limit its 429, each counted once."""
    gw = run_gateway(_config(origin.url, redis_server.url, "3/minute"))
    await _warm(gw, origin, _token("warm-3"))  # another consumer: another count
    token = _token("guarded-3")
    forged = _token("guarded-3", secret="another-secret-of-at-least-thirty-two-bytes")
    calls = _count_app_calls(gw)
    answers = []
    for request in (_get(token),) * 4 + (_get(forged),):
        answers += await _exchange(gw, request, 1)
    statuses = [a[9:12] for a in answers]
    assert statuses == [b"200", b"200", b"200", b"429", b"401"]
    assert len(calls) == 2  # only the refusals reach the chain
    assert [_remaining(a) for a in answers[:4]] == [2, 1, 0, 0]
    assert _header(answers[3], b"retry-after") is not None
    assert _header(answers[4], b"www-authenticate") is not None
    limited = await _settled(gw, "gateway_ratelimit_rejections_total", limit="all:0")
    denied = await _settled(gw, "gateway_auth_rejections_total", status="401")
    assert (limited, denied) == (1.0, 1.0)


@pytest.mark.parametrize(("mode", "status"), [("open", b"200"), ("closed", b"503")])
async def test_redis_down_follows_the_fail_mode_on_the_fast_path(
    origin: EdgeOrigin, run_gateway: Run, mode: str, status: bytes
) -> None:
    """Redis stopped: a fail-open limit lets the hit out, a fail-closed one answers 503;
    the store error is counted once either way."""
    redis = RedisServer().start()
    try:
        gw = run_gateway(_config(origin.url, redis.url, on_store_error=mode))
        token = _token("guarded-4")
        await _warm(gw, origin, token)
    finally:
        redis.stop()
    [answer] = await _exchange(gw, _get(token), 1)
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert await _settled(gw, "gateway_ratelimit_store_errors_total", mode=mode) == 1.0


async def test_a_reload_between_the_decision_and_the_chain_decides_again(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """What the fast path decided under one config is not applied under the next: a
    reload while Redis answered, then the chain (the entry found stale) counts the
    request against the new config's limit. The slot the first decision took stays
    taken (the counters are shared): in this race a request counts twice."""
    from flext_api.gateway import GatewayConfig

    gw = run_gateway(_config(origin.url, redis_server.url, "100/minute"))
    token = _token("guarded-5")
    await _warm(gw, origin, token)
    [before] = await _exchange(gw, _get(token), 1)
    edge: Any = gw.gateway.edge
    newer = GatewayConfig.model_validate(_config(origin.url, redis_server.url, "50/minute"))
    decide = edge._decide
    reloaded: list[bool] = []

    async def decide_then_reload(*args: Any) -> Any:
        decisions = await decide(*args)
        if not reloaded:
            reloaded.append((await gw.gateway.apply(newer)).is_success)
        return decisions

    edge._decide = decide_then_reload
    cache: Any = edge.cache
    cache.still_fresh = lambda key, hot: None  # the chain answers
    [answer] = await _exchange(gw, _get(token), 1)
    assert reloaded == [True]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert _header(answer, b"ratelimit-limit") == b"50"
    assert _remaining(answer) == _remaining(before) - 50 - 2
