"""Seed 003 (SmartCache async patterns): every snippet runs and does what the guide says."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from flext_api import flush_enrichers, get_logger, register_enricher, remove_enricher
from flext_api.cache import AsyncSmartCache, CachedError
from tests.guides.conftest import Events
from tests.guides.seed import s003_smart_cache as guide
from tests.servers.httpbin_server import HttpbinServer


@pytest.fixture(autouse=True)
async def _fresh(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncSmartCache]:
    """Each test gets new module caches (the guide keeps them at module level)."""
    cache = AsyncSmartCache(retry_interval=300)
    monkeypatch.setattr(guide, "cache", cache)
    monkeypatch.setattr(guide, "_enricher_cache", AsyncSmartCache(retry_interval=600))
    monkeypatch.setattr(guide, "rate_limited_cache", guide.RateLimitedCache(cache, 5))
    monkeypatch.setattr(
        guide,
        "circuit_cache",
        guide.CircuitBreakerCache(
            cache, failure_threshold=3, timeout=30.0, expected_exception=ConnectionError
        ),
    )
    monkeypatch.setattr(guide, "invalidatable_cache", guide.InvalidatableCache(cache))
    yield cache
    await cache.aclose()


async def test_simple_usage_computes_once() -> None:
    """get_user_data computes the user once; the second call is a cache hit."""
    first = await guide.get_user_data("42")
    second = await guide.get_user_data("42")
    assert first == {"id": "42", "name": "User_42"}
    assert second is first
    assert (await guide.cache.get_cache_stats())["hits"] == 1


async def test_parameterized_keys() -> None:
    """get_configuration caches per (env, service) under a composite key."""
    assert await guide.get_configuration("prod", "api") == {"env": "prod", "service": "api"}
    assert "config_prod_api" in guide.cache


async def test_fresh_connection_error_takes_the_fresh_branch(
    monkeypatch: pytest.MonkeyPatch, events: Events
) -> None:
    """The first caller of a failing computation gets the ConnectionError itself."""

    async def down() -> str:
        raise ConnectionError("refused")

    monkeypatch.setattr(guide, "expensive_computation", down)
    assert await guide.robust_cache_operation("k") is None
    assert [e["event"] for e in events.entries] == ["Connection failed for k"]


async def test_cached_error_takes_the_fallback_branch(
    monkeypatch: pytest.MonkeyPatch, events: Events
) -> None:
    """Within retry_interval the next caller gets 'Cached error' and the fallback value."""

    async def down() -> str:
        raise ConnectionError("refused")

    monkeypatch.setattr(guide, "expensive_computation", down)
    await guide.robust_cache_operation("k")
    assert await guide.robust_cache_operation("k") == "fallback_k"
    assert events.entries[-1]["event"] == "Using cached error for k, using fallback"


async def test_other_errors_take_the_generic_branch(
    monkeypatch: pytest.MonkeyPatch, events: Events
) -> None:
    """A fresh ValueError reaches the guide's `except Exception` branch."""

    async def broken() -> str:
        raise ValueError("bad input")

    monkeypatch.setattr(guide, "expensive_computation", broken)
    assert await guide.robust_cache_operation("k") is None
    assert events.entries[-1]["event"] == "Computation failed for k: bad input"


async def test_unexpected_runtime_error_is_re_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh RuntimeError that is not a cached error is re-raised, as the guide writes."""

    async def broken() -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(guide, "expensive_computation", broken)
    with pytest.raises(RuntimeError, match=r"^bug$"):
        await guide.robust_cache_operation("k")


async def test_retry_gives_up_with_the_cached_error() -> None:
    """cache_with_retry retries the cached failure and finally raises 'Cached error'."""
    calls: list[int] = []

    async def down() -> str:
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(CachedError, match=r"^Cached error for k"):
        await guide.cache_with_retry("k", down, max_retries=2, base_delay=0.001)
    assert len(calls) == 1


async def test_retry_succeeds_once_the_computation_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With errors not cached, cache_with_retry's second attempt recomputes and succeeds."""
    monkeypatch.setattr(guide, "cache", AsyncSmartCache(retry_interval=0))
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("once")
        return "ok"

    assert await guide.cache_with_retry("k", flaky, base_delay=0.001) == "ok"


async def test_parallel_fetch() -> None:
    """fetch_multiple_resources returns every resource, in order."""
    assert await guide.fetch_multiple_resources(["a", "b", "c"]) == [
        "resource_data_a",
        "resource_data_b",
        "resource_data_c",
    ]


async def test_rate_limited_fetch_awaits_what_the_lambda_returns() -> None:
    """controlled_fetch's lambda returns a coroutine; the cache awaits it."""
    assert await guide.controlled_fetch("7") == {"item": "7"}


async def test_registered_enricher_adds_system_info(events: Events) -> None:
    """register_enricher(system_info_enricher) adds system_info to logged events."""
    register_enricher(guide.system_info_enricher)
    try:
        await get_logger("app").ainfo("hello")
    finally:
        remove_enricher(guide.system_info_enricher)
    (event,) = events.entries
    assert event["system_info"]["hostname"] == socket.gethostname()
    assert {"pid", "memory_mb", "cpu_percent"} <= set(event["system_info"])


async def test_enricher_runs_for_sync_calls_inside_the_loop(events: Events) -> None:
    """log.info inside a running loop is emitted, enriched, once the enrichers finish."""
    register_enricher(guide.system_info_enricher)
    try:
        get_logger("app").info("inside")
        await flush_enrichers()
    finally:
        remove_enricher(guide.system_info_enricher)
    (event,) = events.entries
    assert event["event"] == "inside" and "system_info" in event


def test_enricher_runs_for_sync_calls_without_a_loop(events: Events) -> None:
    """log.info from a thread with no event loop runs the enrichers to completion first."""
    register_enricher(guide.system_info_enricher)
    try:
        worker = threading.Thread(target=lambda: get_logger("app").info("outside"))
        worker.start()
        worker.join()
    finally:
        remove_enricher(guide.system_info_enricher)
    (event,) = events.entries
    assert event["system_info"]["pid"] > 0


async def test_request_context_enricher(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a current request, the event gets its id and the user's id and role."""
    request = SimpleNamespace(id="r-1", user_id="u-1")
    monkeypatch.setattr(guide, "get_current_request", lambda: request)
    event = await guide.request_context_enricher(None, "info", {})
    assert event == {"request_id": "r-1", "user": {"id": "u-1", "role": "admin"}}


async def test_request_context_enricher_records_a_fetch_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failing user fetch is recorded on the event, not raised."""

    async def down(user_id: str) -> dict[str, Any]:
        raise ConnectionError("users API down")

    monkeypatch.setattr(guide, "get_current_request", lambda: SimpleNamespace(id="r", user_id="u"))
    monkeypatch.setattr(guide, "fetch_user_from_api", down)
    event = await guide.request_context_enricher(None, "info", {})
    assert event["user_fetch_error"] == "users API down"


async def test_request_context_enricher_without_request() -> None:
    """Outside a request the event is returned unchanged."""
    assert await guide.request_context_enricher(None, "info", {"a": 1}) == {"a": 1}


async def test_performance_enricher() -> None:
    """performance_enricher adds the per-minute metrics."""
    event = await guide.performance_enricher(None, "info", {})
    assert {"timestamp", "process_stats", "system_load"} <= set(event["performance"])


async def test_multi_level_enricher() -> None:
    """The multi-level enricher adds process info (fast cache) and config (slow cache)."""
    event = await guide.MultiLevelEnricher()(None, "info", {})
    assert event["pid"] > 0 and event["thread_id"] == threading.get_ident()
    assert event["config"] == {"feature_flags": ["flag1", "flag2"]}


async def test_cache_warmer_loads_the_essential_keys(events: Events) -> None:
    """warm_cache computes hostname, pid and start_time into the cache."""
    warmer = guide.CacheWarmer(guide.cache)
    await warmer.warm_cache()
    assert guide.cache.get("hostname") == socket.gethostname()
    assert {"hostname", "pid", "start_time"} <= set(guide.cache._cache)
    assert len([e for e in events.entries if e["event"].startswith("Warmed cache")]) == 3


async def test_background_warming_runs_until_cancelled() -> None:
    """start_background_warming's task warms the cache; cancelling it stops it."""
    task = await guide.warmer.start_background_warming()
    for _ in range(1000):
        if "pid" in guide.warmer.cache:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guide.warmer.cache.get("pid") is not None


async def test_invalidation_pattern_really_invalidates(events: Events) -> None:
    """The guide's _cache/_lock recipe drops the keys: the next call recomputes."""
    calls: list[str] = []

    async def load() -> str:
        calls.append("x")
        return f"v{len(calls)}"

    inv = guide.InvalidatableCache(guide.cache)
    assert await inv.get_or_compute("user_1", load, pattern="user_data") == "v1"
    await inv.invalidate_pattern("user_data")
    assert "user_1" not in guide.cache
    assert await inv.get_or_compute("user_1", load, pattern="user_data") == "v2"
    assert events.entries[-1]["event"] == "Invalidated 1 keys for pattern: user_data"


async def test_user_enricher_uses_the_invalidatable_cache() -> None:
    """user_enricher caches the user under the tracked pattern."""
    event = await guide.user_enricher(None, "info", {"user_id": "9"})
    assert event["user"] == {"id": "9"}
    assert guide.invalidatable_cache.key_patterns["user_data"] == {"user_9"}


async def test_entries_view_refuses_writes() -> None:
    """Writing through _cache fails loudly instead of bypassing the cache's rules."""
    with pytest.raises(TypeError, match=r"await cache\.set"):
        guide.cache._cache["k"] = 1


async def test_circuit_breaker_cache_falls_back_on_a_fresh_connection_error() -> None:
    """The first failing call is a ConnectionError: counted, and the fallback answers."""
    event = await guide.resilient_enricher(None, "info", {})
    assert event["external"]["status"] == "fallback"
    assert guide.circuit_cache.failure_count == 1


async def test_circuit_breaker_cache_sees_the_cached_error_next() -> None:
    """Within retry_interval the cached error (a RuntimeError) reaches the enricher."""
    await guide.resilient_enricher(None, "info", {})
    event = await guide.resilient_enricher(None, "info", {})
    assert event["external_error"].startswith("Cached error for external_data")


async def test_circuit_breaker_cache_opens_and_uses_the_fallback() -> None:
    """After failure_threshold fresh failures the circuit opens and the fallback answers."""
    breaker = guide.CircuitBreakerCache(
        AsyncSmartCache(retry_interval=0), failure_threshold=2, expected_exception=ConnectionError
    )

    async def fallback() -> str:
        return "fallback"

    for _ in range(2):
        await breaker.get_or_compute("k", guide.call_external_api, fallback_func=fallback)
    assert breaker.state is guide.CircuitState.OPEN
    assert await breaker.get_or_compute("k", guide.call_external_api, fallback) == "fallback"


def test_cache_key_design() -> None:
    """The 'good' keys are specific and hierarchical."""
    key = guide.cache_key_design("u", 1, "prod", "api", 3, "latency", "2024-01", "p99")
    assert key == "metrics_latency_2024-01_p99"


async def test_dedicated_async_function(
    monkeypatch: pytest.MonkeyPatch, httpbin_server: HttpbinServer
) -> None:
    """get_user_permissions fetches with an async HTTP client and caches the answer."""
    monkeypatch.setattr(guide, "BASE_URL", httpbin_server.url)
    assert await guide.get_user_permissions("u1") == ["u1", "read"]
    assert "permissions_u1" in guide.cache


def test_mixed_function_runs_outside_a_loop() -> None:
    """The guide's 'bad' mixed function works from plain sync code (it starts a loop)."""
    assert guide.mixed_function("1") == "sync"


async def test_robust_enricher_pattern_records_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """One failing enrichment is recorded on the event; the others still apply."""

    async def add_user_context(event_dict: dict[str, Any]) -> None:
        raise ConnectionError("no users")

    monkeypatch.setattr(guide, "add_user_context", add_user_context)
    event = await guide.robust_enricher_pattern(get_logger("t"), "info", {})
    assert event["add_user_context_error"] == "no users"
    assert event["host"] == socket.gethostname()


async def test_monitor_logs_the_cache_stats(events: Events) -> None:
    """monitor_cache_performance logs the stats keys the guide reads, every minute."""
    await guide.cache.get_or_compute("a", lambda: 1)
    task = asyncio.create_task(guide.monitor_cache_performance(guide.cache))
    for _ in range(1000):
        if events.named("Cache performance"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (logged,) = events.named("Cache performance")
    assert logged["total_entries"] == 1 and logged["success_entries"] == 1
    assert {"error_entries", "hit_rate"} <= set(logged)


async def test_debug_enricher(events: Events) -> None:
    """debug_enricher logs how long the cache operation took."""
    event = await guide.debug_enricher(get_logger("t"), "debug", {"x": 1})
    assert event == {"x": 1}
    assert events.entries[-1]["event"].startswith("Cache operation completed in ")
