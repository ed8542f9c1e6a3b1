"""AsyncSmartCache error caching: the original for its caller, CachedError for the others."""

from __future__ import annotations

import asyncio
import math
import pickle
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from flext_api.cache import AsyncSmartCache, CachedError, FlextApiCache
from flext_api.testing import FakeClock


class Boom(Exception):
    """The loader's own failure."""


def failing(calls: list[int], delay: float = 0.0) -> Callable[[], Awaitable[str]]:
    async def fn() -> str:
        calls.append(1)
        await asyncio.sleep(delay)
        raise Boom("boom")

    return fn


async def test_hundred_waiters_on_failing_key_one_call() -> None:
    """100 callers on a failing key: 1 call; the first gets Boom, 99 get CachedError of it."""
    calls: list[int] = []
    async with AsyncSmartCache() as cache:
        results = await asyncio.gather(
            *(cache.get_or_compute("k", failing(calls, 0.01)) for _ in range(100)),
            return_exceptions=True,
        )
    assert len(calls) == 1
    assert type(results[0]) is Boom
    assert {type(r) for r in results[1:]} == {CachedError}
    assert all(isinstance(r, CachedError) and r.__cause__ is results[0] for r in results[1:])


async def test_first_caller_gets_the_original_exception() -> None:
    """The caller whose computation fails gets what it raised (the guide's fresh error)."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(Boom, match="boom"):
            await cache.get_or_compute("k", failing([]))


async def test_later_caller_gets_cached_error_of_the_original() -> None:
    """Within retry_interval a later caller gets CachedError; its cause is the original."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(Boom) as first:
            await cache.get_or_compute("k", failing([]))
        with pytest.raises(CachedError) as later:
            await cache.get_or_compute("k", failing([]))
    assert later.value.__cause__ is first.value
    assert later.value.error is first.value


async def test_cached_error_message_and_type() -> None:
    """The message starts 'Cached error for <key>' and the class is a RuntimeError."""
    async with AsyncSmartCache() as cache:
        with pytest.raises(Boom):
            await cache.get_or_compute("test_key", failing([]))
        with pytest.raises(RuntimeError, match=r"^Cached error for test_key: Boom: boom"):
            await cache.get_or_compute("test_key", failing([]))


async def test_no_recompute_during_retry_interval_then_exactly_one() -> None:
    """During retry_interval callers get the cached error; after it, one coalesced recompute."""
    clock = FakeClock()
    calls: list[int] = []
    async with AsyncSmartCache(retry_interval=timedelta(minutes=5), clock=clock) as cache:
        with pytest.raises(Boom):
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
        assert [type(r) for r in results] == [Boom] + [CachedError] * 49


async def test_success_after_retry_interval_replaces_error() -> None:
    """A successful recompute after the interval replaces the cached error."""
    clock = FakeClock()
    async with AsyncSmartCache(retry_interval=10, clock=clock) as cache:
        with pytest.raises(Boom):
            await cache.get_or_compute("k", failing([]))
        clock.advance(10)
        assert await cache.get_or_compute("k", lambda: "ok") == "ok"
        assert await cache.get_or_compute("k", failing([])) == "ok"
        stats = await cache.get_cache_stats()
    assert stats["error_entries"] == 0
    assert stats["success_entries"] == 1


async def test_retry_interval_zero_disables_error_caching() -> None:
    """With retry_interval=0 every call recomputes, and each caller gets its own error."""
    calls: list[int] = []
    async with AsyncSmartCache(retry_interval=0) as cache:
        for _ in range(3):
            with pytest.raises(Boom):
                await cache.get_or_compute("k", failing(calls))
    assert len(calls) == 3


async def test_only_listed_error_types_are_cached() -> None:
    """cache_errors limits which failures are kept; others are recomputed on the next call."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        raise KeyError("nope")

    async with AsyncSmartCache(cache_errors=(Boom,)) as cache:
        for _ in range(2):
            with pytest.raises(KeyError):
                await cache.get_or_compute("k", fn)
    assert len(calls) == 2


async def test_retry_backoff_grows_and_is_capped() -> None:
    """retry_backoff multiplies the interval per consecutive failure, up to max_retry_interval."""
    clock = FakeClock()
    cache = AsyncSmartCache(retry_interval=1, retry_backoff=2.0, max_retry_interval=3, clock=clock)
    intervals = []
    for _ in range(4):
        with pytest.raises(Boom):
            await cache.get_or_compute("k", failing([]))
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
        with pytest.raises(Boom):
            await cache.get_or_compute("k", failing([]))
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
        with pytest.raises(Boom):
            await cache.get_or_compute("k", fn)
        for _ in range(2):
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


@pytest.mark.parametrize("bound", [float("nan"), 2.5, True, "10"])
def test_max_entries_must_be_an_int(bound: object) -> None:
    """A NaN, float, bool or str max_entries is a TypeError, not a bound that never holds."""
    with pytest.raises(TypeError, match="max_entries must be an int"):
        AsyncSmartCache(max_entries=bound)  # type: ignore[arg-type]


def test_unknown_policy_is_refused_even_unbounded() -> None:
    """policy="lfu" is a ValueError with or without max_entries (it was ignored without)."""
    with pytest.raises(ValueError, match="unknown eviction policy"):
        AsyncSmartCache(policy="lfu")  # type: ignore[arg-type]


def test_infinite_early_refresh_beta_is_refused() -> None:
    """early_refresh_beta=inf would refresh on every hit (or compute a NaN margin)."""
    with pytest.raises(ValueError, match="early_refresh_beta"):
        AsyncSmartCache(ttl=60, early_refresh_beta=math.inf)


async def test_non_str_key_is_a_type_error_not_a_cached_failure() -> None:
    """A non-str key is a TypeError before fn runs, never a cached failure of the key."""
    calls: list[int] = []
    cache = AsyncSmartCache(backend=FlextApiCache())
    with pytest.raises(TypeError, match="keys must be str, got int"):
        await cache.get_or_compute(1, lambda: calls.append(1))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="keys must be str, got tuple"):
        await cache.set(("a", "b"), 1)  # type: ignore[arg-type]
    assert calls == []
    assert len(cache) == 0
    assert (await cache.get_cache_stats())["error_entries"] == 0


@pytest.mark.parametrize("kinds", [(1,), ("Boom",), (Boom, int), [Boom]])
def test_cache_errors_must_be_a_tuple_of_exception_types(kinds: object) -> None:
    """A cache_errors that is not a tuple of exception classes is a TypeError at construction."""
    with pytest.raises(TypeError, match="cache_errors"):
        AsyncSmartCache(cache_errors=kinds)  # type: ignore[arg-type]


async def test_one_exception_class_is_taken_as_cache_errors() -> None:
    """cache_errors=Boom (no tuple) caches Boom, as (Boom,) does."""
    calls: list[int] = []
    async with AsyncSmartCache(cache_errors=Boom) as cache:  # type: ignore[arg-type]
        with pytest.raises(Boom):
            await cache.get_or_compute("k", failing(calls))
        with pytest.raises(CachedError):
            await cache.get_or_compute("k", failing(calls))
    assert len(calls) == 1
