"""AsyncSmartCache freshness: TTLs, stale-while-revalidate, stale-if-error, XFetch early refresh."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from flext_api.cache import AsyncSmartCache, CachedError
from flext_api.testing import FakeClock


def counter() -> tuple[list[int], Callable[[], int]]:
    calls: list[int] = []

    def fn() -> int:
        calls.append(1)
        return len(calls)

    return calls, fn


async def settle() -> None:
    """Let background refresh tasks run to completion."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_default_ttl_expires_values() -> None:
    """A value is recomputed once the default ttl has passed."""
    clock = FakeClock()
    _, fn = counter()
    async with AsyncSmartCache(ttl=10, clock=clock) as cache:
        assert await cache.get_or_compute("k", fn) == 1
        clock.advance(9.9)
        assert await cache.get_or_compute("k", fn) == 1
        clock.advance(0.1)
        assert await cache.get_or_compute("k", fn) == 2


async def test_per_entry_ttl_overrides_default() -> None:
    """ttl= on the call wins over the default, and a timedelta is accepted."""
    clock = FakeClock()
    _, fn = counter()
    async with AsyncSmartCache(ttl=100, clock=clock) as cache:
        await cache.get_or_compute("k", fn, ttl=timedelta(seconds=1))
        clock.advance(1)
        assert await cache.get_or_compute("k", fn) == 2


async def test_without_ttl_values_never_expire() -> None:
    """With no ttl a value stays until invalidated."""
    clock = FakeClock()
    _, fn = counter()
    async with AsyncSmartCache(clock=clock) as cache:
        await cache.get_or_compute("k", fn)
        clock.advance(10**9)
        assert await cache.get_or_compute("k", fn) == 1


async def test_stale_while_revalidate_serves_old_value_and_refreshes_once() -> None:
    """Inside the stale window callers get the old value at once while one refresh runs."""
    clock = FakeClock()
    calls, fn = counter()
    async with AsyncSmartCache(ttl=10, stale_while_revalidate=5, clock=clock) as cache:
        await cache.get_or_compute("k", fn)
        clock.advance(11)
        served = [await cache.get_or_compute("k", fn) for _ in range(5)]
        assert served == [1] * 5
        await settle()
        assert len(calls) == 2
        assert await cache.get_or_compute("k", fn) == 2
        stats = await cache.get_cache_stats()
    assert stats["stale_served"] == 5
    assert stats["refreshes"] == 1


async def test_past_stale_window_callers_wait_for_the_recompute() -> None:
    """Beyond ttl + stale_while_revalidate the value is not served any more."""
    clock = FakeClock()
    _, fn = counter()
    async with AsyncSmartCache(ttl=10, stale_while_revalidate=5, clock=clock) as cache:
        await cache.get_or_compute("k", fn)
        clock.advance(15)
        assert await cache.get_or_compute("k", fn) == 2


async def test_failed_background_refresh_is_logged_and_cached() -> None:
    """A refresh that fails is logged and cached; without stale_if_error callers then get it."""
    clock = FakeClock()
    async with AsyncSmartCache(ttl=10, stale_while_revalidate=5, clock=clock) as cache:
        await cache.get_or_compute("k", lambda: "old")

        def broken() -> str:
            raise ValueError("down")

        clock.advance(11)
        with capture_logs() as logs:
            assert await cache.get_or_compute("k", broken) == "old"
            await settle()
        with pytest.raises(CachedError):
            await cache.get_or_compute("k", broken)
    assert [e["event"] for e in logs] == ["smart_cache.refresh_failed"]
    assert logs[0]["key"] == "k"


async def test_stale_if_error_serves_last_good_value_while_error_cached() -> None:
    """With stale_if_error the last good value answers during the retry interval."""
    clock = FakeClock()
    calls: list[int] = []

    def broken() -> str:
        calls.append(1)
        raise ValueError("down")

    async with AsyncSmartCache(ttl=10, stale_if_error=60, retry_interval=30, clock=clock) as cache:
        await cache.get_or_compute("k", lambda: "good")
        clock.advance(10)
        assert await cache.get_or_compute("k", broken) == "good"  # the recompute failed
        clock.advance(20)
        assert await cache.get_or_compute("k", broken) == "good"  # error cached: no call
        assert len(calls) == 1
        clock.advance(40)  # the value is now 70 s past expiry: beyond the window
        with pytest.raises(ValueError):  # this caller's own recompute failed
            await cache.get_or_compute("k", broken)
        stats = await cache.get_cache_stats()
    assert stats["stale_served"] == 2


async def test_stale_if_error_forever() -> None:
    """stale_if_error=math.inf keeps serving the last good value however old."""
    clock = FakeClock()

    def broken() -> str:
        raise ValueError("down")

    async with AsyncSmartCache(
        ttl=1, stale_if_error=math.inf, retry_interval=1, clock=clock
    ) as cache:
        await cache.get_or_compute("k", lambda: "good")
        for _ in range(3):
            clock.advance(10**6)
            assert await cache.get_or_compute("k", broken) == "good"


async def test_xfetch_refreshes_early_in_background() -> None:
    """With early refresh on, a value near expiry is refreshed before it expires."""
    clock = FakeClock()
    calls: list[int] = []

    async def fn() -> int:
        calls.append(1)
        clock.advance(1.0)  # the computation "takes" one second: XFetch's delta
        return len(calls)

    cache = AsyncSmartCache(ttl=100, early_refresh_beta=1.0, clock=clock, rng=random.Random(7))
    assert await cache.get_or_compute("k", fn) == 1  # expires at t0 + 1 + 100
    clock.advance(99.9)  # 0.1 s before expiry, well inside the 10 s XFetch margin
    served = [await cache.get_or_compute("k", fn) for _ in range(50)]
    await settle()
    stats = await cache.get_cache_stats()
    await cache.aclose()
    assert served[0] == 1  # early refresh never makes a caller wait
    assert stats["early_refreshes"] == 1
    assert len(calls) == 2


async def test_xfetch_leaves_young_values_alone() -> None:
    """Far from expiry the fast path serves without rolling the dice."""
    clock = FakeClock()
    calls, fn = counter()
    async with AsyncSmartCache(ttl=100, early_refresh_beta=1.0, clock=clock) as cache:
        await cache.get_or_compute("k", fn)
        clock.advance(50)
        for _ in range(100):
            await cache.get_or_compute("k", fn)
        stats = await cache.get_cache_stats()
    assert stats["early_refreshes"] == 0
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": 0}, "ttl must be > 0"),
        ({"retry_interval": -1}, "retry_interval must be >= 0"),
        ({"max_entries": 0}, "max_entries"),
        ({"early_refresh_beta": 0}, "early_refresh_beta"),
        ({"retry_backoff": 0.5}, "retry_backoff"),
        ({"retry_jitter": 2}, "retry_jitter"),
        ({"stale_if_error": float("nan")}, "stale_if_error"),
        ({"policy": "fifo", "max_entries": 3}, "unknown eviction policy"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict[str, object], message: str) -> None:
    """Invalid settings fail at construction with a ValueError naming the setting."""
    with pytest.raises(ValueError, match=message):
        AsyncSmartCache(**kwargs)  # type: ignore[arg-type]


def test_duration_of_wrong_type_is_a_type_error() -> None:
    """A duration that is neither seconds nor a timedelta is a TypeError."""
    with pytest.raises(TypeError, match="ttl must be seconds"):
        AsyncSmartCache(ttl="10")  # type: ignore[arg-type]


async def slow_value(clock: FakeClock) -> str:
    clock.advance(5.0)  # XFetch's delta: 5 s, so the early-refresh margin is 50 s
    return "v"


async def test_value_inside_the_xfetch_margin_is_still_fresh_for_get() -> None:
    """get() and `in` see a value that has not expired, early refresh margin or not."""
    clock = FakeClock()
    cache = AsyncSmartCache(ttl=100, early_refresh_beta=1.0, clock=clock, rng=random.Random(1))
    await cache.get_or_compute("k", lambda: slow_value(clock))  # expires 100 s from now
    clock.advance(60)
    assert cache.get("k") == "v"
    assert "k" in cache
    clock.advance(40)
    assert cache.get("k") is None
    assert "k" not in cache
    await cache.aclose()


async def test_closed_cache_serves_a_value_inside_the_xfetch_margin() -> None:
    """After aclose() an unexpired value is a hit even inside the early refresh margin."""
    clock = FakeClock()
    cache = AsyncSmartCache(ttl=100, early_refresh_beta=1.0, clock=clock, rng=random.Random(1))
    await cache.get_or_compute("k", lambda: slow_value(clock))
    clock.advance(60)
    await cache.aclose()
    assert await cache.get_or_compute("k", lambda: slow_value(clock)) == "v"
    assert (await cache.get_cache_stats())["in_flight"] == 0


async def test_closed_cache_serves_stale_without_refreshing() -> None:
    """After aclose() a stale-while-revalidate hit is served and no refresh is started."""
    clock = FakeClock()
    calls, fn = counter()
    cache = AsyncSmartCache(ttl=10, stale_while_revalidate=30, clock=clock)
    await cache.get_or_compute("k", fn)
    await cache.aclose()
    clock.advance(15)
    assert await cache.get_or_compute("k", fn) == 1
    await settle()
    assert len(calls) == 1
    assert (await cache.get_cache_stats())["refreshes"] == 0
