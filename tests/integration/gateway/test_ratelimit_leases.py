"""Shared (Redis) edge limits lease their slots: one round trip per lease, never over.

Real redis-server; two :class:`EdgeLimiter` objects stand for two gateways sharing it.
The lease's local expiry runs on an injected monotonic clock, so the end of a window is
stepped to, not waited for.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import ValidationError

from flext_api.gateway._edge_config import RateLimitRule
from flext_api.gateway._ratelimit import CompiledLimit, EdgeLimiter, StoreDown
from flext_api.server._ratelimit import RateLimitDecision
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

_prefixes = itertools.count()
Make = Callable[..., EdgeLimiter]


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[Make]:
    """``make(**options)``: a limiter on the shared Redis, under this test's own prefix."""
    prefix = f"lease-test-{next(_prefixes)}-{id(redis_server)}"
    made: list[EdgeLimiter] = []

    def make(**options: object) -> EdgeLimiter:
        limiter = EdgeLimiter(redis_server.url, prefix=prefix, **options)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


def _limit(limit: str, **rule: object) -> CompiledLimit:
    return CompiledLimit.build("r", 0, RateLimitRule(limit=limit, store="redis", **rule))  # type: ignore[arg-type]


async def _decide(limiter: EdgeLimiter, limit: CompiledLimit, key: str) -> RateLimitDecision:
    decision = await limiter.hit(limit, key)
    assert isinstance(decision, RateLimitDecision), decision
    return decision


def test_the_default_lease_is_one_percent_of_the_limit_at_most_64() -> None:
    assert _limit("100/minute").lease == 1  # small limits: a round trip per request
    assert _limit("199/minute").lease == 1
    assert _limit("1000/minute").lease == 10
    assert _limit("10000000/minute").lease == 64
    assert _limit("3/minute", lease=5).lease == 3  # never more than the limit
    assert _limit("1000/minute", lease=1).lease == 1


def test_a_lease_on_a_memory_limit_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="lease is for store: redis"):
        RateLimitRule(limit="1000/minute", store="memory", lease=10)


async def test_two_gateways_admit_exactly_the_limit_between_them(limiters: Make) -> None:
    """Alternating requests on two gateways: every slot leased is spent, none twice."""
    one, two = limiters(), limiters()
    limit = _limit("1000/minute")
    decisions = [await _decide((one, two)[i % 2], limit, "ip:1") for i in range(1500)]
    allowed = [d.allowed for d in decisions]
    assert allowed.count(True) == 1000
    assert allowed[:1000] == [True] * 1000  # the slots held are spent before any refusal
    # 1000 slots in leases of 10 (the last ones shorter): about 100 round trips, not 1000;
    # each refusal is one more (no lease is taken for a refusal).
    admitted_trips = one.round_trips + two.round_trips - 500
    assert 100 <= admitted_trips <= 110


async def test_remaining_counts_down_through_leased_slots(limiters: Make) -> None:
    """RateLimit-Remaining is what a round trip per request would have said."""
    limiter = limiters()
    limit = _limit("1000/minute")
    remaining = [(await _decide(limiter, limit, "ip:2")).remaining for _ in range(25)]
    assert remaining == list(range(999, 974, -1))
    assert limiter.round_trips == 3


async def test_leased_slots_end_with_their_window(limiters: Make) -> None:
    """Slots are only spent in the window they were counted in; then Redis is asked."""
    now = [1000.0]
    limiter = limiters(monotonic=lambda: now[0])
    limit = _limit("1000/minute")
    await _decide(limiter, limit, "ip:3")
    await _decide(limiter, limit, "ip:3")
    assert limiter.round_trips == 1  # the second used the lease
    now[0] += 61  # past the 60 s window the lease was counted in
    await _decide(limiter, limit, "ip:3")
    assert limiter.round_trips == 2


async def test_leased_slots_are_spent_while_redis_is_down() -> None:
    """Slots already leased are the gateway's: spent first, then the fail mode."""
    with RedisServer() as own:
        limiter = EdgeLimiter(own.url)
        try:
            limit = _limit("1000/minute", on_store_error="closed")
            first = await _decide(limiter, limit, "ip:4")
            own.stop()
            held = [await limiter.hit(limit, "ip:4") for _ in range(9)]
            after = await limiter.hit(limit, "ip:4")
        finally:
            await limiter.aclose()
    assert first.allowed
    assert all(isinstance(d, RateLimitDecision) and d.allowed for d in held)
    assert after == StoreDown(closed=True)
