"""AsyncSmartCache size bound: max_entries with the lru (CLOCK) and tinylfu policies."""

from __future__ import annotations

import functools

import pytest

from flext_api.cache import AsyncSmartCache


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
async def test_max_entries_is_never_exceeded(policy: str) -> None:
    """However many keys arrive, at most max_entries stay and the rest count as evictions."""
    async with AsyncSmartCache(max_entries=50, policy=policy) as cache:  # type: ignore[arg-type]
        for i in range(500):
            await cache.get_or_compute(f"k{i}", functools.partial(int, i))
            assert len(cache) <= 50
        stats = await cache.get_cache_stats()
    assert stats["evictions"] == 450
    assert stats["total_entries"] == 50


async def test_lru_keeps_the_recently_used_key() -> None:
    """Under "lru", a key hit since its insertion survives the next eviction."""
    async with AsyncSmartCache(max_entries=2, policy="lru") as cache:
        await cache.get_or_compute("a", lambda: 1)
        await cache.get_or_compute("b", lambda: 2)
        await cache.get_or_compute("a", lambda: 0)  # a hit
        await cache.get_or_compute("c", lambda: 3)
        assert "a" in cache
        assert "b" not in cache


async def test_tinylfu_keeps_the_popular_key_under_a_scan() -> None:
    """Under "tinylfu", a frequently read key survives a scan of one-off keys."""
    async with AsyncSmartCache(max_entries=100, policy="tinylfu") as cache:
        for _ in range(20):
            await cache.get_or_compute("hot", lambda: "h")
        for i in range(1000):
            await cache.get_or_compute(f"scan{i}", functools.partial(int, i))
            await cache.get_or_compute("hot", lambda: "recomputed")
        assert await cache.get_or_compute("hot", lambda: "recomputed") == "h"


async def test_evicted_error_entry_updates_counts() -> None:
    """Evicting a cached error keeps error_entries right."""
    async with AsyncSmartCache(max_entries=1, policy="lru") as cache:

        def boom() -> int:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await cache.get_or_compute("bad", boom)
        await cache.get_or_compute("good", lambda: 1)
        stats = await cache.get_cache_stats()
    assert stats["error_entries"] == 0
    assert stats["total_entries"] == 1


async def test_unbounded_cache_sweeps_expired_entries() -> None:
    """Without max_entries, expired entries are swept as new keys arrive (memory stays bounded)."""
    from flext_api.testing import FakeClock

    clock = FakeClock()
    async with AsyncSmartCache(ttl=1, clock=clock) as cache:
        for i in range(3000):
            await cache.get_or_compute(f"k{i}", functools.partial(int, i))
            clock.advance(0.01)  # about 100 entries are alive at any time
        assert len(cache) < 1200
        clock.advance(5)
        before = len(cache)
        assert cache.purge_expired() == before
        assert len(cache) == 0
