"""AsyncSmartCache stats: fapilog's keys with a real hit rate, plus the new counters; repr."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api.cache import AsyncSmartCache, CachedError, FlextApiCache

FAPILOG_KEYS = {"total_entries", "success_entries", "error_entries", "cache_hit_rate"}
NEW_KEYS = {
    "hits",
    "misses",
    "coalesced",
    "in_flight",
    "errors_served",
    "stale_served",
    "evictions",
}


async def test_stats_keep_fapilog_keys_and_add_counters() -> None:
    """The stats dict has fapilog's four keys and the added counters."""
    async with AsyncSmartCache() as cache:
        stats = await cache.get_cache_stats()
    assert set(stats) >= FAPILOG_KEYS | NEW_KEYS
    assert stats["cache_hit_rate"] == 0.0


async def test_hit_rate_is_hits_over_lookups() -> None:
    """cache_hit_rate = hits / (hits + misses), not success_entries / total_entries."""
    async with AsyncSmartCache() as cache:
        await cache.get_or_compute("a", lambda: 1)  # miss
        for _ in range(3):
            await cache.get_or_compute("a", lambda: 1)  # hits
        stats = await cache.get_cache_stats()
    assert stats["hits"] == 3
    assert stats["misses"] == 1
    assert stats["cache_hit_rate"] == pytest.approx(0.75)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "5"])
async def test_a_call_refused_for_its_ttl_is_not_a_miss(ttl: Any) -> None:
    """get_or_compute(ttl=<bad>) raises before anything is counted or computed."""
    async with AsyncSmartCache() as cache:
        with pytest.raises((TypeError, ValueError), match="ttl must be"):
            await cache.get_or_compute("a", lambda: 1, ttl=ttl)
        stats = await cache.get_cache_stats()
    assert (stats["misses"], stats["hits"], stats["loads"]) == (0, 0, 0)


async def test_coalesced_and_in_flight_are_counted() -> None:
    """Waiters joining a computation count as coalesced; in_flight shows running computations."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()

        async def slow() -> int:
            await gate.wait()
            return 1

        tasks = [asyncio.ensure_future(cache.get_or_compute("k", slow)) for _ in range(5)]
        await asyncio.sleep(0)
        during = await cache.get_cache_stats()
        gate.set()
        await asyncio.gather(*tasks)
        after = await cache.get_cache_stats()
    assert during["in_flight"] == 1
    assert during["coalesced"] == 4
    assert after["in_flight"] == 0
    assert after["loads"] == 1


async def test_coalesced_waiters_are_hits() -> None:
    """Callers that join a computation another caller started count as hits, as async-lru does."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()
        runs: list[int] = []

        async def slow() -> int:
            runs.append(1)
            await gate.wait()
            return 1

        tasks = [asyncio.ensure_future(cache.get_or_compute("k", slow)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*tasks) == [1] * 5
        stats = await cache.get_cache_stats()
    assert runs == [1]
    assert (stats["hits"], stats["misses"]) == (4, 1)
    assert stats["cache_hit_rate"] == pytest.approx(0.8)


async def test_a_value_from_the_shared_backend_is_a_hit() -> None:
    """A caller served from the shared backend ran no computation: a hit, not a miss."""
    shared = FlextApiCache()
    await shared.set("smart:k", 7)
    async with AsyncSmartCache(backend=shared) as cache:
        assert await cache.get_or_compute("k", lambda: 0) == 7
        stats = await cache.get_cache_stats()
    assert (stats["hits"], stats["misses"], stats["backend_hits"]) == (1, 0, 1)
    assert stats["cache_hit_rate"] == 1.0


async def test_error_counters() -> None:
    """errors_served counts cached errors raised; error_entries counts keys holding one."""
    async with AsyncSmartCache() as cache:

        def boom() -> int:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await cache.get_or_compute("bad", boom)
        for _ in range(2):
            with pytest.raises(CachedError):
                await cache.get_or_compute("bad", boom)
        await cache.get_or_compute("good", lambda: 1)
        stats = await cache.get_cache_stats()
    assert stats["errors_served"] == 2
    assert stats["load_failures"] == 1
    assert stats["error_entries"] == 1
    assert stats["success_entries"] == 1
    assert stats["total_entries"] == 2


async def test_repr_is_informative() -> None:
    """repr shows entries, computations in flight, hit rate, policy and bound."""
    async with AsyncSmartCache(max_entries=10, policy="lru") as cache:
        await cache.get_or_compute("a", lambda: 1)
        await cache.get_or_compute("a", lambda: 1)
        assert repr(cache) == (
            "<AsyncSmartCache entries=1 in_flight=0 hit_rate=0.50 policy=lru max_entries=10>"
        )
    assert "max_entries=unbounded" in repr(AsyncSmartCache())


async def test_contains_only_counts_fresh_values() -> None:
    """`key in cache` is True for a fresh value only (not for errors or non-str keys)."""
    async with AsyncSmartCache() as cache:
        await cache.get_or_compute("a", lambda: 1)

        def boom() -> int:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await cache.get_or_compute("b", boom)
        assert "a" in cache
        assert "b" not in cache
        assert 1 not in cache
