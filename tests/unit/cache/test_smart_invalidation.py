"""AsyncSmartCache invalidation (key, glob, tag), clear, set/get and warm."""

from __future__ import annotations

import asyncio
import functools

import pytest

from flext_api.cache import AsyncSmartCache, CachedError


async def fill(cache: AsyncSmartCache, *keys: str, tags: tuple[str, ...] = ()) -> None:
    for key in keys:
        await cache.get_or_compute(key, key.upper, tags=tags)


async def test_invalidate_key() -> None:
    """invalidate(key) drops one key and says whether it was there."""
    async with AsyncSmartCache() as cache:
        await fill(cache, "a", "b")
        assert await cache.invalidate("a") is True
        assert await cache.invalidate("a") is False
        assert "a" not in cache
        assert "b" in cache


async def test_invalidate_pattern() -> None:
    """invalidate_pattern drops the keys matching a glob and returns how many."""
    async with AsyncSmartCache() as cache:
        await fill(cache, "user:1", "user:2", "order:1", "user:10")
        assert await cache.invalidate_pattern("user:?") == 2
        assert sorted(k for k in ("user:1", "user:2", "order:1", "user:10") if k in cache) == [
            "order:1",
            "user:10",
        ]


async def test_invalidate_tag() -> None:
    """invalidate_tag drops every key stored with the tag, and only those."""
    async with AsyncSmartCache() as cache:
        await fill(cache, "a", "b", tags=("group",))
        await fill(cache, "c")
        assert await cache.invalidate_tag("group") == 2
        assert await cache.invalidate_tag("group") == 0
        assert "c" in cache
        assert (await cache.get_cache_stats())["tags"] == 0


async def test_one_str_as_tags_is_a_type_error() -> None:
    """tags="users" would tag the key "u", "s", "e", "r"; it is refused, and nothing stored."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(TypeError, match=r"tags must be an iterable of str, not one str"):
            await cache.get_or_compute("a", lambda: 1, tags="users")
        with pytest.raises(TypeError, match="not one str"):
            await cache.set("b", 1, tags="users")
        with pytest.raises(TypeError, match="not one str"):
            await cache.warm({"c": lambda: 1}, tags="users")
        with pytest.raises(TypeError, match="tags must hold str, got int"):
            await cache.set("d", 1, tags=[7])  # type: ignore[list-item]
        stats = await cache.get_cache_stats()
    assert (stats["total_entries"], stats["tags"], stats["misses"], stats["loads"]) == (0, 0, 0, 0)


async def test_invalidate_where_drops_the_keys_a_predicate_picks() -> None:
    """invalidate_where matches literally what a glob cannot: here a "[" and "?" in keys."""
    async with AsyncSmartCache() as cache:
        await fill(cache, "f:[draft]?", "f:d?", "f:[draft]?x")
        assert await cache.invalidate_where(lambda key: key == "f:[draft]?") == 1
        assert [k for k in ("f:[draft]?", "f:d?", "f:[draft]?x") if k in cache] == [
            "f:d?",
            "f:[draft]?x",
        ]


async def test_invalidation_during_computation_discards_its_result() -> None:
    """A value computed from before an invalidation is given to its waiters but not kept."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()

        async def old() -> str:
            await gate.wait()
            return "old"

        waiter = asyncio.ensure_future(cache.get_or_compute("k", old, tags=("t",)))
        await asyncio.sleep(0)
        assert await cache.invalidate_tag("t") == 0  # nothing stored yet, the flight is dropped
        gate.set()
        assert await waiter == "old"
        assert await cache.get_or_compute("k", lambda: "new") == "new"


async def test_clear_drops_everything() -> None:
    """clear() empties the cache and forgets computations in flight."""
    async with AsyncSmartCache(max_entries=10) as cache:
        await fill(cache, "a", "b", tags=("t",))
        gate = asyncio.Event()

        async def pending() -> str:
            await gate.wait()
            return "p"

        waiter = asyncio.ensure_future(cache.get_or_compute("p", pending))
        await asyncio.sleep(0)
        await cache.clear()
        gate.set()
        assert await waiter == "p"
        stats = await cache.get_cache_stats()
    assert stats["total_entries"] == 0
    assert stats["tags"] == 0
    assert stats["in_flight"] == 0


async def test_set_and_get() -> None:
    """set() stores a value that get() and get_or_compute() then serve."""
    async with AsyncSmartCache() as cache:
        await cache.set("k", 5, tags=("t",))
        assert cache.get("k") == 5
        assert cache.get("missing", "default") == "default"
        assert await cache.get_or_compute("k", lambda: 6) == 5
        assert await cache.invalidate_tag("t") == 1


async def test_set_replaces_cached_error() -> None:
    """set() on a key with a cached error makes it serve the value."""
    async with AsyncSmartCache() as cache:

        def boom() -> int:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await cache.get_or_compute("k", boom)
        with pytest.raises(CachedError):
            await cache.get_or_compute("k", boom)
        await cache.set("k", 1)
        assert await cache.get_or_compute("k", boom) == 1


async def test_set_while_computing_wins() -> None:
    """A value set while a computation runs is not overwritten by it."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return "computed"

        waiter = asyncio.ensure_future(cache.get_or_compute("k", slow))
        await asyncio.sleep(0)
        await cache.set("k", "set")
        gate.set()
        assert await waiter == "computed"
        assert cache.get("k") == "set"


async def test_warm_loads_keys_and_reports_failures() -> None:
    """warm() computes every key with bounded concurrency and reports the failures."""
    running = 0
    peak = 0

    async def load(value: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        if value == 3:
            raise LookupError("missing")
        return value

    async with AsyncSmartCache() as cache:
        report = await cache.warm(
            {f"k{i}": functools.partial(load, i) for i in range(10)}, concurrency=3
        )
        assert report.loaded == tuple(sorted(f"k{i}" for i in range(10) if i != 3))
        assert list(report.failed) == ["k3"]
        assert isinstance(report.failed["k3"], LookupError)
        assert not report.ok
        assert peak == 3
        assert cache.get("k5") == 5


async def test_warm_rejects_zero_concurrency() -> None:
    """warm(concurrency=0) is a ValueError."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(ValueError, match="concurrency"):
            await cache.warm({}, concurrency=0)


async def test_invalidation_in_a_bounded_cache_frees_room() -> None:
    """Invalidated keys leave the eviction policy too: new keys do not evict the others."""
    async with AsyncSmartCache(max_entries=2) as cache:
        await fill(cache, "a", "b")
        await cache.invalidate("a")
        await fill(cache, "c")
        assert "b" in cache
        assert "c" in cache
        stats = await cache.get_cache_stats()
    assert stats["evictions"] == 0


async def test_clear_on_an_unbounded_cache() -> None:
    """clear() works without an eviction policy."""
    async with AsyncSmartCache() as cache:
        await fill(cache, "a")
        await cache.clear()
        assert len(cache) == 0


def test_entry_repr_names_its_state() -> None:
    """An entry's repr says whether it holds a value, an error or nothing."""
    from flext_api.cache._smart_parts import Entry

    entry = Entry("k")
    assert repr(entry) == "<Entry 'k' empty>"
    entry.value = 1
    assert repr(entry) == "<Entry 'k' value>"
    entry.error = ValueError()
    assert repr(entry) == "<Entry 'k' error>"
