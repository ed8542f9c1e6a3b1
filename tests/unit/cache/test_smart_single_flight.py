"""AsyncSmartCache: one computation per key, keys in parallel, sync and async loaders."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from flext_api.cache import AsyncSmartCache


def counting(value: str, delay: float = 0.0) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def fn() -> str:
        calls.append(1)
        await asyncio.sleep(delay)
        return value

    return calls, fn


async def test_thousand_concurrent_callers_share_one_call() -> None:
    """1000 concurrent get_or_compute on one key make exactly one call and all get its value."""
    async with AsyncSmartCache() as cache:
        calls, fn = counting("v", delay=0.01)
        results = await asyncio.gather(*(cache.get_or_compute("k", fn) for _ in range(1000)))
    assert len(calls) == 1
    assert results == ["v"] * 1000


async def test_hundred_keys_compute_in_parallel() -> None:
    """100 keys compute at the same time, not one after another (fapilog's lock serialised them)."""
    async with AsyncSmartCache() as cache:
        active = 0
        peak = 0

        async def slow(i: int) -> int:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            return i

        results = await asyncio.gather(
            *(cache.get_or_compute(f"k{i}", functools.partial(slow, i)) for i in range(100))
        )
    assert results == list(range(100))
    assert peak == 100  # every computation was running at the same time


async def test_second_call_is_a_hit() -> None:
    """A computed value is served again without calling the loader."""
    async with AsyncSmartCache() as cache:
        calls, fn = counting("v")
        assert await cache.get_or_compute("k", fn) == "v"
        assert await cache.get_or_compute("k", fn) == "v"
    assert len(calls) == 1


async def test_sync_loader_is_called() -> None:
    """A plain function works as a loader."""
    async with AsyncSmartCache() as cache:
        assert await cache.get_or_compute("k", lambda: 41 + 1) == 42


async def test_awaitable_returned_by_sync_callable_is_awaited() -> None:
    """``lambda: coro_fn()`` caches the result, not the coroutine object (fapilog's pitfall)."""

    async def fetch() -> str:
        return "fetched"

    async with AsyncSmartCache() as cache:
        assert await cache.get_or_compute("k", lambda: fetch()) == "fetched"
        assert await cache.get_or_compute("k", lambda: fetch()) == "fetched"


async def test_waiters_on_one_key_do_not_block_other_keys() -> None:
    """While one key computes slowly, another key is computed and served."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()

        async def blocked() -> str:
            await gate.wait()
            return "slow"

        slow = asyncio.ensure_future(cache.get_or_compute("slow", blocked))
        await asyncio.sleep(0)
        assert await cache.get_or_compute("fast", lambda: "fast") == "fast"
        assert not slow.done()
        gate.set()
        assert await slow == "slow"


async def test_none_is_a_cached_value() -> None:
    """A loader returning None is cached like any other value."""
    async with AsyncSmartCache() as cache:
        calls: list[int] = []

        def fn() -> str | None:
            calls.append(1)
            return None

        assert await cache.get_or_compute("k", fn) is None
        assert await cache.get_or_compute("k", fn) is None
    assert len(calls) == 1
