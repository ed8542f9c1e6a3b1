"""CachePlugin as a component: storage failures, configuration, lifecycle, background work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from flext_api import (
    CacheConfig,
    ClientConfig,
    ErrorCode,
    FlextApiClient,
    FlextApiError,
    FlextResult,
    HttpRequest,
    HttpResponse,
)
from flext_api._errors import ConfigError
from flext_api.cache import CachePlugin, FilesystemBackend, FlextApiCache, HttpCachePolicy
from flext_api.cache._http_spec import cache_key
from flext_api.testing import FakeClock

from .._backends import DownBackend
from ._support import URL, Origin, answer, fixed, get, http_date, new_plugin


async def test_corrupt_record_is_a_logged_miss() -> None:
    """A damaged stored record is logged and the request goes to the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await plugin.cache.set("http:" + cache_key("GET", URL), b"\x00\x00\x00\x09garbage!!")
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    with capture_logs() as logs:
        result = await get(plugin, origin)
    assert not result.value.from_cache
    assert "http_cache.corrupt_record" in [e["event"] for e in logs]


async def test_non_bytes_record_is_ignored() -> None:
    """A value of another kind under the key (not bytes) is a miss."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await plugin.cache.set("http:" + cache_key("GET", URL), {"not": "ours"})
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    assert not (await get(plugin, origin)).value.from_cache


async def test_backend_outage_never_fails_the_request() -> None:
    """With the storage down requests still succeed; load/store/invalidate failures are
    logged (with the cool-down off, every call is tried)."""
    clock = FakeClock()
    plugin = CachePlugin(FlextApiCache(DownBackend()), clock=clock, backend_cooldown=0)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    with capture_logs() as logs:
        assert (await get(plugin, origin)).is_success
        assert (await get(plugin, origin, method="POST")).is_success
    events = {e["event"] for e in logs}
    assert {
        "http_cache.load_failed",
        "http_cache.store_failed",
        "http_cache.invalidate_failed",
    } <= events


async def test_from_config_builds_backend_and_options(tmp_path: Path) -> None:
    """from_config takes backend, shared, max_entries and options (backend and plugin keys)."""
    config = CacheConfig(
        enabled=True,
        backend="filesystem",
        shared=True,
        options={"path": str(tmp_path), "max_bytes": 10_000, "stale_if_error": 30, "keep": 60},
    )
    plugin = CachePlugin.from_config(config)
    assert isinstance(plugin.cache.backend, FilesystemBackend)
    assert plugin.policy == HttpCachePolicy(shared=True, stale_if_error=30, keep=60)
    memory = CachePlugin.from_config(CacheConfig(enabled=True, max_entries=7))
    assert memory.cache.backend.max_entries == 7  # type: ignore[attr-defined]
    await plugin.cleanup()
    await memory.cleanup()


async def test_the_memory_store_is_bounded_in_bytes() -> None:
    """The HTTP cache's memory store holds 64 MiB by default (``max_bytes`` in options
    changes it, None lifts it); a response past the bound is served, not stored."""
    assert CachePlugin().cache.backend.max_bytes == 64 << 20  # type: ignore[attr-defined]
    default = CachePlugin.from_config(CacheConfig(enabled=True))
    assert default.cache.backend.max_bytes == 64 << 20  # type: ignore[attr-defined]
    unbounded = CachePlugin.from_config(CacheConfig(enabled=True, options={"max_bytes": None}))
    assert unbounded.cache.backend.max_bytes is None  # type: ignore[attr-defined]
    clock = FakeClock()
    options = {"max_bytes": 4096}
    small = CachePlugin.from_config(CacheConfig(enabled=True, options=options), clock=clock)
    big, fits = (
        fixed(clock, [("Cache-Control", "max-age=60")], body=b"x" * 8192),
        fixed(clock, [("Cache-Control", "max-age=60")], body=b"y" * 1024),
    )
    assert (await get(small, fits, url=URL + "small")).value.content == b"y" * 1024
    for _ in range(2):
        result = await get(small, big)
        assert result.value.content == b"x" * 8192
        assert not result.value.from_cache
    assert big.hits == 2
    assert (await get(small, fits, url=URL + "small")).value.from_cache  # still stored
    for plugin in (default, unbounded, small):
        await plugin.cleanup()


async def test_cleanup_closes_only_an_owned_cache() -> None:
    """cleanup() closes the cache the plugin made, never one it was given."""
    closed: list[str] = []

    class Tracking(FlextApiCache):
        async def close(self) -> None:
            closed.append("closed")

    given = CachePlugin(Tracking())
    await given.cleanup()
    assert closed == []
    owned = CachePlugin.from_config(CacheConfig(enabled=True))
    owned.cache = Tracking()
    await owned.cleanup()
    assert closed == ["closed"]


async def test_cleanup_cancels_background_revalidation() -> None:
    """cleanup() cancels revalidations still running."""
    clock = FakeClock()
    plugin = new_plugin(clock, stale_while_revalidate=60)
    await get(plugin, fixed(clock, [("Cache-Control", "max-age=1"), ("ETag", '"e"')]))
    clock.advance(5)
    never = asyncio.Event()

    async def hanging(request: HttpRequest) -> FlextResult[HttpResponse]:
        await never.wait()
        raise AssertionError("unreachable")

    assert (await plugin.handle(HttpRequest("GET", URL), hanging)).value.cache_status == "stale"
    await asyncio.sleep(0)
    assert "background=1" in repr(plugin)
    await plugin.cleanup()
    assert "background=0" in repr(plugin)


async def test_failed_background_revalidation_is_logged() -> None:
    """A background revalidation that fails is logged; the stale entry stays for next time."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    stored = fixed(clock, [("Cache-Control", "max-age=1, stale-while-revalidate=60")])
    await get(plugin, stored)
    clock.advance(5)
    down = Origin(
        lambda r: FlextResult.fail(FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "down"))
    )
    with capture_logs() as logs:
        assert (await get(plugin, down)).value.cache_status == "stale"
        await plugin.drain()
    assert [e["event"] for e in logs] == ["http_cache.background_revalidation_failed"]
    assert down.requests[0].deadline is None


async def test_background_refresh_without_validator_replaces_the_entry() -> None:
    """Stale-while-revalidate without a validator refreshes with a plain request."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    bodies = iter([b"one", b"two"])
    origin = Origin(
        lambda r: answer(
            r,
            headers=[
                ("Date", http_date(clock)),
                ("Cache-Control", "max-age=1, stale-while-revalidate=60"),
            ],
            body=next(bodies),
        )
    )
    await get(plugin, origin)
    clock.advance(5)
    await get(plugin, origin)
    await plugin.drain()
    assert "if-none-match" not in origin.requests[1].headers
    assert (await get(plugin, origin)).value.content == b"two"


def test_policy_validation() -> None:
    """Negative windows or zero variants are ValueErrors."""
    with pytest.raises(ValueError, match="keep"):
        HttpCachePolicy(keep=-1)
    with pytest.raises(ValueError, match="max_variants"):
        HttpCachePolicy(max_variants=0)


def test_repr() -> None:
    """repr names the mode and the cache."""
    assert repr(CachePlugin(shared=True)).startswith("<CachePlugin shared cache=<FlextApiCache")
    assert CachePlugin.name == "cache"


async def test_stale_answer_with_unknown_age_says_age_2_31() -> None:
    """A stored response with a malformed Age, served under max-stale, answers Age: 2**31."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60"), ("Age", "abc"), ("ETag", '"v1"')])
    await get(plugin, origin)
    result = await get(plugin, origin, headers=[("Cache-Control", "max-stale")])
    assert origin.hits == 1
    assert result.value.cache_status == "stale"
    assert result.value.headers["age"] == str(2**31)


async def test_non_ascii_digits_in_headers_are_a_miss_not_a_crash() -> None:
    """max-age=² and Age: ² from the origin are invalid values, so the response is stale."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    for headers in (
        [("Cache-Control", "max-age=²")],
        [("Cache-Control", "max-age=60"), ("Age", "²")],
    ):
        origin = fixed(clock, headers)
        await get(plugin, origin, url=f"{URL}/{len(headers)}")
        second = await get(plugin, origin, url=f"{URL}/{len(headers)}")
        assert second.is_success
        assert origin.hits == 2


def test_policy_counts_and_windows_reject_floats_and_bools() -> None:
    """max_variants=2.5 is a TypeError at construction, not at the first store."""
    with pytest.raises(TypeError, match="max_variants must be an int"):
        CachePlugin(max_variants=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_if_error"):
        HttpCachePolicy(stale_if_error=True)


@pytest.mark.parametrize(
    "options",
    [{"keep": -1}, {"stale_if_error": "x"}, {"max_variants": 0}, {"namespace": 5}],
)
def test_from_config_with_bad_plugin_options_is_a_config_error(options: dict[str, Any]) -> None:
    """The plugin's own options are checked as the backend's are: ConfigError."""
    with pytest.raises(ConfigError, match="cache option"):
        CachePlugin.from_config(CacheConfig(enabled=True, options=options))


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5"])
def test_bad_redis_socket_timeout_through_client_config_is_a_config_error(timeout: object) -> None:
    """ClientConfig's cache options reach the Redis backend's checks when the client is built."""
    config = ClientConfig(
        cache=CacheConfig(
            enabled=True,
            backend="redis",
            options={"url": "redis://127.0.0.1:1/0", "socket_timeout": timeout},
        )
    )
    with pytest.raises(ConfigError, match="socket_timeout must be"):
        FlextApiClient("http://127.0.0.1:1", config=config)


class CountingDownBackend(DownBackend):
    """A lost backend that counts the calls made to it (each costing a timeout)."""

    def __init__(self, code: ErrorCode = ErrorCode.READ_TIMEOUT) -> None:
        super().__init__()
        self.calls = 0
        self.code = code

    def _fail(self) -> FlextApiError:
        self.calls += 1
        return FlextApiError.from_code(self.code, "backend timed out")


async def test_a_backend_that_times_out_is_left_alone_for_its_cool_down() -> None:
    """A hung Redis cost every cacheable request up to three backend timeouts (load,
    re-load, store). After one failure the backend is left alone for
    ``backend_cooldown`` seconds: requests go to the origin at once; then it is tried
    again."""
    clock = FakeClock(auto_advance=False)
    backend = CountingDownBackend()
    plugin = CachePlugin(FlextApiCache(backend), clock=clock, backend_cooldown=5.0)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    with capture_logs() as logs:
        assert (await get(plugin, origin)).is_success
        assert backend.calls == 1  # the load failed: nothing more asked of it
        for _ in range(3):
            assert (await get(plugin, origin)).is_success
            assert (await get(plugin, origin, method="POST")).is_success
        assert backend.calls == 1
        clock.advance(5.0)
        assert (await get(plugin, origin)).is_success
        assert backend.calls == 2  # tried again after the cool-down, failed again
    assert origin.hits == 8
    events = [e["event"] for e in logs]
    assert events.count("http_cache.backend_down") == 2


async def test_the_cool_down_is_for_lost_backends_only() -> None:
    """A backend error that is not an outage (a value it refuses) does not stop the cache."""
    clock = FakeClock(auto_advance=False)
    backend = CountingDownBackend(ErrorCode.INVALID_REQUEST)
    plugin = CachePlugin(FlextApiCache(backend), clock=clock, backend_cooldown=5.0)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    assert (await get(plugin, origin)).is_success
    assert backend.calls == 3  # load, re-load before the store, store


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "5", True])
def test_a_bad_cool_down_is_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="backend_cooldown"):
        CachePlugin(backend_cooldown=value)
