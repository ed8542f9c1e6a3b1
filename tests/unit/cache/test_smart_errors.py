"""AsyncSmartCache error caching: CachedError for every caller, retry_interval, backoff."""

from __future__ import annotations

import asyncio
import pickle
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from flext_api.cache import AsyncSmartCache, CachedError
from flext_api.testing import FakeClock


class Boom(Exception):
    """The loader's own failure."""


def failing(calls: list[int], delay: float = 0.0) -> Callable[[], Awaitable[str]]:
    async def fn() -> str:
        calls.append(1)
        await asyncio.sleep(delay)
        raise Boom("boom")

    return fn


async def test_hundred_waiters_on_failing_key_one_call_same_type() -> None:
    """100 waiters on a failing key: 1 call; each gets CachedError caused by the original."""
    calls: list[int] = []
    async with AsyncSmartCache() as cache:
        results = await asyncio.gather(
            *(cache.get_or_compute("k", failing(calls, 0.01)) for _ in range(100)),
            return_exceptions=True,
        )
    assert len(calls) == 1
    assert {type(r) for r in results} == {CachedError}
    causes = {id(r.__cause__) for r in results if isinstance(r, BaseException)}
    assert len(causes) == 1  # the one original exception, shared
    assert all(isinstance(r, BaseException) and isinstance(r.__cause__, Boom) for r in results)


async def test_first_caller_also_gets_cached_error() -> None:
    """The caller whose computation fails gets CachedError too: the type never depends on order."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(CachedError) as info:
            await cache.get_or_compute("k", failing([]))
    assert isinstance(info.value.__cause__, Boom)
    assert info.value.error is info.value.__cause__


async def test_cached_error_message_and_type() -> None:
    """The message starts 'Cached error for <key>' and the class is a RuntimeError."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(RuntimeError, match=r"^Cached error for test_key: Boom: boom"):
            await cache.get_or_compute("test_key", failing([]))


async def test_no_recompute_during_retry_interval_then_exactly_one() -> None:
    """During retry_interval callers get the cached error; after it, one coalesced recompute."""
    clock = FakeClock()
    calls: list[int] = []
    async with AsyncSmartCache(retry_interval=timedelta(minutes=5), clock=clock) as cache:
        with pytest.raises(CachedError):
            await cache.get_or_compute("k", failing(calls))
        clock.advance(299)
        for _ in range(10):
            with pytest.raises(CachedError) as info:
                await cache.get_or_compute("k", failing(calls))
        assert info.value.retry_in == pytest.approx(1.0)
        assert len(calls) == 1
        clock.advance(1.5)
        results = await asyncio.gather(
            *(cache.get_or_compute("k", failing(calls, 0.01)) for _ in range(50)),
            return_exceptions=True,
        )
        assert len(calls) == 2
        assert {type(r) for r in results} == {CachedError}


async def test_success_after_retry_interval_replaces_error() -> None:
    """A successful recompute after the interval replaces the cached error."""
    clock = FakeClock()
    async with AsyncSmartCache(retry_interval=10, clock=clock) as cache:
        with pytest.raises(CachedError):
            await cache.get_or_compute("k", failing([]))
        clock.advance(10)
        assert await cache.get_or_compute("k", lambda: "ok") == "ok"
        assert await cache.get_or_compute("k", failing([])) == "ok"
        stats = await cache.get_cache_stats()
    assert stats["error_entries"] == 0
    assert stats["success_entries"] == 1


async def test_retry_interval_zero_disables_error_caching() -> None:
    """With retry_interval=0 the next call recomputes at once."""
    calls: list[int] = []
    async with AsyncSmartCache(retry_interval=0) as cache:
        for _ in range(3):
            with pytest.raises(CachedError) as info:
                await cache.get_or_compute("k", failing(calls))
            assert info.value.retry_in == 0.0
    assert len(calls) == 3


async def test_only_listed_error_types_are_cached() -> None:
    """cache_errors limits which failures are kept; others are recomputed on the next call."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        raise KeyError("nope")

    async with AsyncSmartCache(cache_errors=(Boom,)) as cache:
        for _ in range(2):
            with pytest.raises(CachedError) as info:
                await cache.get_or_compute("k", fn)
            assert isinstance(info.value.__cause__, KeyError)
    assert len(calls) == 2


async def test_retry_backoff_grows_and_is_capped() -> None:
    """retry_backoff multiplies the interval per consecutive failure, up to max_retry_interval."""
    clock = FakeClock()
    cache = AsyncSmartCache(retry_interval=1, retry_backoff=2.0, max_retry_interval=3, clock=clock)
    intervals = []
    for _ in range(4):
        with pytest.raises(CachedError) as info:
            await cache.get_or_compute("k", failing([]))
        intervals.append(info.value.retry_in)
        clock.advance(info.value.retry_in)
    await cache.aclose()
    assert intervals == [1.0, 2.0, 3.0, 3.0]


async def test_retry_jitter_spreads_the_interval() -> None:
    """retry_jitter moves the interval within +-fraction, reproducibly with a seeded rng."""
    intervals = []
    for seed in range(5):
        cache = AsyncSmartCache(retry_interval=10, retry_jitter=0.5, rng=random.Random(seed))
        with pytest.raises(CachedError) as info:
            await cache.get_or_compute("k", failing([]))
        intervals.append(info.value.retry_in)
        await cache.aclose()
    assert all(5.0 <= i <= 15.0 for i in intervals)
    assert len(set(intervals)) > 1


async def test_sync_loader_exception_is_cached() -> None:
    """An exception raised by a sync loader is handled like an async one."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        raise Boom("sync")

    async with AsyncSmartCache() as cache:
        for _ in range(3):
            with pytest.raises(CachedError):
                await cache.get_or_compute("k", fn)
    assert len(calls) == 1


def test_cached_error_pickles() -> None:
    """CachedError survives pickling (multiprocessing, log handlers) with key and cause."""
    err = CachedError("k", ValueError("x"), retry_in=3.0)
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, CachedError)
    assert copy.key == "k"
    assert str(copy) == "Cached error for k: ValueError: x"


def test_cached_error_message_without_text() -> None:
    """An exception without a message is named by its type alone."""
    assert str(CachedError("k", Boom())) == "Cached error for k: Boom"
