"""AsyncSmartCache cancellation: a cancelled caller never poisons the entry or strands waiters."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode, FlextApiError
from flext_api.cache import AsyncSmartCache


async def test_cancelling_the_first_caller_does_not_cancel_the_computation() -> None:
    """The caller that started a computation can be cancelled; waiters still get the value."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()
        calls: list[int] = []

        async def slow() -> str:
            calls.append(1)
            await gate.wait()
            return "v"

        first = asyncio.ensure_future(cache.get_or_compute("k", slow))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(cache.get_or_compute("k", slow))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        gate.set()
        assert await second == "v"
        assert await cache.get_or_compute("k", slow) == "v"
    assert len(calls) == 1


async def test_value_is_stored_even_when_every_caller_left() -> None:
    """A computation whose callers were all cancelled still completes and is cached."""
    async with AsyncSmartCache() as cache:
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return "v"

        caller = asyncio.ensure_future(cache.get_or_compute("k", slow))
        await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert cache.get("k") == "v"


async def test_aclose_cancels_computations_and_waiters_get_cancelled_code() -> None:
    """aclose() cancels computations in flight; their waiters get a CANCELLED FlextApiError."""
    cache = AsyncSmartCache()
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return "unreachable"

    waiter = asyncio.ensure_future(cache.get_or_compute("k", hang))
    await asyncio.sleep(0)
    await cache.aclose()
    with pytest.raises(FlextApiError) as info:
        await waiter
    assert info.value.code is ErrorCode.CANCELLED
    assert "k" not in cache


async def test_closed_cache_refuses_new_misses() -> None:
    """After aclose() a miss raises RuntimeError; existing values are still served."""
    cache = AsyncSmartCache()
    await cache.get_or_compute("k", lambda: 1)
    await cache.aclose()
    assert await cache.get_or_compute("k", lambda: 2) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get_or_compute("other", lambda: 2)


async def test_aclose_cancels_a_running_computation() -> None:
    """A computation already running is cancelled by aclose() and leaves nothing behind."""
    cache = AsyncSmartCache()
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.Event().wait()
        return "unreachable"

    waiter = asyncio.ensure_future(cache.get_or_compute("k", hang))
    await started.wait()
    await cache.aclose()
    with pytest.raises(FlextApiError, match="was cancelled"):
        await waiter
    assert (await cache.get_cache_stats())["in_flight"] == 0
