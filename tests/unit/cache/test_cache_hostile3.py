"""Hostile uses of AsyncSmartCache: a computation asking for its own key, endless failures."""

from __future__ import annotations

import asyncio
import random

import pytest

from flext_api.cache import AsyncSmartCache, CachedError
from flext_api.cache._smart_settings import SmartCacheSettings
from flext_api.testing import FakeClock


async def _settle() -> None:
    """Let every ready task run a few steps (no timer, no wall clock)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_computation_asking_for_its_own_key_fails_instead_of_hanging() -> None:
    """fn calling get_or_compute(k) for its own k is a RuntimeError, not a wait for ever."""
    cache = AsyncSmartCache(clock=FakeClock())

    async def recursive() -> int:
        return await cache.get_or_compute("k", recursive) + 1

    call = asyncio.ensure_future(cache.get_or_compute("k", recursive))
    await _settle()
    try:
        assert call.done(), "the computation waits for its own result"
        with pytest.raises(RuntimeError, match="asked for 'k' again"):
            call.result()
        assert (await cache.get_cache_stats())["in_flight"] == 0
    finally:
        await cache.aclose()


async def test_a_cycle_through_another_key_fails_instead_of_hanging() -> None:
    """A's fn asking for B whose fn asks for A is caught too (the flights are inherited)."""
    cache = AsyncSmartCache(clock=FakeClock())

    async def a() -> int:
        return await cache.get_or_compute("b", b)

    async def b() -> int:
        return await cache.get_or_compute("a", a)

    call = asyncio.ensure_future(cache.get_or_compute("a", a))
    await _settle()
    try:
        assert call.done(), "a and b wait for each other"
        with pytest.raises(RuntimeError, match="asked for 'a' again"):
            call.result()
    finally:
        await cache.aclose()


async def test_a_task_started_by_fn_asking_for_the_key_fails_instead_of_hanging() -> None:
    """A child task of fn inherits its flight: gather(get_or_compute(k)) inside fn fails too."""
    cache = AsyncSmartCache(clock=FakeClock())

    async def fan_out() -> int:
        (result,) = await asyncio.gather(cache.get_or_compute("k", fan_out))
        return result

    call = asyncio.ensure_future(cache.get_or_compute("k", fan_out))
    await _settle()
    try:
        assert call.done()
        with pytest.raises(RuntimeError, match="own result"):
            call.result()
    finally:
        await cache.aclose()


async def test_a_task_left_by_an_earlier_computation_may_compute_the_key_again() -> None:
    """Only a wait on an ancestor's flight is refused: a finished flight's child computes."""
    cache = AsyncSmartCache(clock=FakeClock())
    go = asyncio.Event()
    leftovers: list[asyncio.Task[int]] = []

    async def later() -> int:
        await go.wait()
        return await cache.get_or_compute("k", lambda: 2)

    async def first() -> int:
        leftovers.append(asyncio.ensure_future(later()))
        return 1

    assert await cache.get_or_compute("k", first) == 1
    await cache.invalidate("k")
    go.set()
    assert await leftovers[0] == 2


async def test_plain_coalescing_is_not_taken_for_recursion() -> None:
    """Two callers of one key still share one computation."""
    cache = AsyncSmartCache(clock=FakeClock())
    release = asyncio.Event()
    calls = 0

    async def fn() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 5

    calls_ = [asyncio.ensure_future(cache.get_or_compute("k", fn)) for _ in range(3)]
    await _settle()
    release.set()
    assert await asyncio.gather(*calls_) == [5, 5, 5]
    assert calls == 1


async def test_failures_past_the_float_range_of_the_backoff_keep_the_capped_interval() -> None:
    """After 1,024+ consecutive failures with backoff 2 the caller still gets fn's error."""
    clock = FakeClock()
    cache = AsyncSmartCache(retry_interval=1, retry_backoff=2.0, max_retry_interval=60, clock=clock)

    def boom() -> int:
        raise ValueError("origin down")

    for _ in range(1100):
        with pytest.raises(ValueError, match="origin down"):
            await cache.get_or_compute("k", boom)
        clock.advance(60)
    with pytest.raises(ValueError, match="origin down"):
        await cache.get_or_compute("k", boom)
    with pytest.raises(CachedError) as cached:
        await cache.get_or_compute("k", boom)
    assert cached.value.retry_in == 60
    assert (await cache.get_cache_stats())["error_entries"] == 1


def test_the_retry_delay_of_a_huge_failure_count_is_the_cap() -> None:
    """2.0 ** 5000 overflows a float: the delay is max_retry_interval, not OverflowError."""
    settings = SmartCacheSettings.build(
        retry_interval=1,
        ttl=None,
        stale_while_revalidate=0,
        stale_if_error=0,
        early_refresh_beta=None,
        retry_backoff=2.0,
        max_retry_interval=300,
        retry_jitter=0.0,
        cache_errors=(Exception,),
    )
    assert settings.retry_delay(5000, random.Random(0)) == 300


@pytest.mark.parametrize("key", [[1], {"a": 1}, {1}], ids=["list", "dict", "set"])
async def test_an_unhashable_key_is_refused_with_the_cache_s_message(key: object) -> None:
    """A list/dict/set key is the same TypeError as any non-str key, naming the rule."""
    cache = AsyncSmartCache(clock=FakeClock())
    with pytest.raises(TypeError, match="keys must be str"):
        await cache.get_or_compute(key, lambda: 1)  # type: ignore[call-overload]
