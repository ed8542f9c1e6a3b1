"""AsyncSmartCache over a shared FlextApiCache backend: values shared, failures logged."""

from __future__ import annotations

from datetime import datetime

from structlog.testing import capture_logs

from flext_api.cache import AsyncSmartCache, FlextApiCache
from flext_api.testing import FakeClock

from ._backends import DownBackend


async def test_second_cache_reads_the_value_from_the_backend() -> None:
    """A value computed by one cache is found in the backend by another (another process)."""
    shared = FlextApiCache()
    first = AsyncSmartCache(ttl=60, backend=shared)
    second = AsyncSmartCache(ttl=60, backend=shared)
    assert await first.get_or_compute("k", lambda: {"n": 1}) == {"n": 1}
    calls: list[int] = []

    def fn() -> dict[str, int]:
        calls.append(1)
        return {"n": 2}

    assert await second.get_or_compute("k", fn) == {"n": 1}
    assert calls == []
    assert (await second.get_cache_stats())["backend_hits"] == 1
    assert await shared.get("smart:k") == {"n": 1}
    await first.aclose()
    await second.aclose()


async def test_backend_value_keeps_its_remaining_ttl() -> None:
    """A value loaded from the backend expires when the backend copy does."""
    clock = FakeClock()
    shared = FlextApiCache(clock=clock)
    await shared.set("smart:k", "v", ttl=5)
    async with AsyncSmartCache(ttl=3600, backend=shared, clock=clock) as cache:
        assert await cache.get_or_compute("k", lambda: "computed") == "v"
        clock.advance(5)
        await shared.delete("smart:k")
        assert await cache.get_or_compute("k", lambda: "computed") == "computed"


async def test_invalidate_deletes_the_backend_copy() -> None:
    """invalidate, invalidate_pattern and invalidate_tag remove the shared copies too."""
    shared = FlextApiCache()
    async with AsyncSmartCache(backend=shared, namespace="ns:") as cache:
        await cache.get_or_compute("a", lambda: 1, tags=("t",))
        await cache.get_or_compute("b", lambda: 2)
        await cache.set("c", 3)
        assert await shared.get("ns:c") == 3
        await cache.invalidate("a")
        assert await shared.get("ns:a") is None
        assert await cache.invalidate_pattern("b") == 1
        assert await shared.get("ns:b") is None


async def test_backend_outage_is_logged_and_computation_goes_on() -> None:
    """When the backend fails, the cache computes locally and logs each failure."""
    async with AsyncSmartCache(backend=FlextApiCache(DownBackend())) as cache:
        with capture_logs() as logs:
            assert await cache.get_or_compute("k", lambda: 1) == 1
            await cache.invalidate("k")
    events = [e["event"] for e in logs]
    assert events == [
        "smart_cache.backend_get_failed",
        "smart_cache.backend_set_failed",
        "smart_cache.backend_delete_failed",
    ]


async def test_unserializable_value_stays_local_with_a_warning() -> None:
    """A value the backend cannot store is still cached locally; the reason is logged."""
    async with AsyncSmartCache(backend=FlextApiCache()) as cache:
        marker = object()
        with capture_logs() as logs:
            assert await cache.get_or_compute("k", lambda: marker) is marker
        assert await cache.get_or_compute("k", object) is marker
    assert logs[0]["event"] == "smart_cache.backend_set_failed"
    assert "cannot cache the value for key 'smart:k'" in logs[0]["error"]


async def test_a_value_json_would_change_stays_local_so_every_process_agrees() -> None:
    """A value holding a datetime is not shared: each process computes its own, and every one
    gets a datetime, never the str another process would read back from the backend."""
    shared = FlextApiCache()
    when = datetime(2024, 1, 1)
    async with (
        AsyncSmartCache(ttl=60, backend=shared) as first,
        AsyncSmartCache(ttl=60, backend=shared) as second,
    ):
        with capture_logs() as logs:
            mine = await first.get_or_compute("k", lambda: {"when": when})
            theirs = await second.get_or_compute("k", lambda: {"when": when})
        assert mine == theirs == {"when": when}
        assert await shared.get("smart:k") is None
        assert (await second.get_cache_stats())["backend_hits"] == 0
    assert [e["event"] for e in logs] == ["smart_cache.backend_set_failed"] * 2
    assert "datetime" in logs[0]["error"]


async def test_a_shared_value_is_equal_in_the_process_that_computed_it_and_in_others() -> None:
    """Plain JSON values are shared, and the local copy equals what another process reads."""
    shared = FlextApiCache()
    value = {"name": "Ada", "ids": [1, 2], "score": 1.5, "ok": True, "none": None}
    async with (
        AsyncSmartCache(ttl=60, backend=shared) as first,
        AsyncSmartCache(ttl=60, backend=shared) as second,
    ):
        local = await first.get_or_compute("k", lambda: value)
        remote = await second.get_or_compute("k", lambda: {"computed": "again"})
    assert local == remote == value
