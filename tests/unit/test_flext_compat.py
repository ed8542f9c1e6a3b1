"""Edges of the FLEXT guide surface: results, logger, dict client settings, cache internals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from flext_api import (
    ErrorCode,
    FlextApiConfig,
    FlextResult,
    create_flext_api,
    flush_enrichers,
    get_logger,
    register_enricher,
    remove_enricher,
)
from flext_api._errors import ConfigError
from flext_api.cache import AsyncSmartCache, FilesystemBackend
from flext_api.client.batch._compat import takes_counts
from flext_api.testing import FakeClock

# --- FlextResult ---------------------------------------------------------------------------


def test_ok_takes_data_keyword() -> None:
    """FlextResult.ok(data=True) is the FLEXT spelling of ok(True)."""
    assert FlextResult.ok(data=True) == FlextResult.ok(True)


def test_ok_refuses_both_or_neither() -> None:
    """ok() needs exactly one of value and data=."""
    with pytest.raises(TypeError, match="not both"):
        FlextResult.ok(1, data=2)
    with pytest.raises(TypeError, match="needs a value"):
        FlextResult.ok()


def test_fail_with_none_reads_unknown_error() -> None:
    """fail(other.error) with a None error still makes a failure with a message."""
    assert FlextResult.fail(None).error == "unknown error"


# --- get_logger / enrichers -----------------------------------------------------------------


def test_logger_levels_bind_and_extra() -> None:
    """Every level logs its fields; extra= merges; bind() adds fields to every event."""
    log = get_logger("t").bind(service="s")
    with capture_logs() as logs:
        log.debug("d", a=1)
        log.warning("w", extra={"b": 2})
        log.error("e")
        try:
            raise ValueError("x")
        except ValueError:
            log.exception("boom")
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("d", "debug"),
        ("w", "warning"),
        ("e", "error"),
        ("boom", "error"),
    ]
    assert logs[1]["b"] == 2 and all(e["service"] == "s" for e in logs)
    assert isinstance(logs[3]["exc_info"], ValueError)
    assert repr(log) == "<FlextLogger 't'>"


async def test_async_levels_without_enrichers() -> None:
    """awarning and aerror log plainly when no enricher is registered."""
    with capture_logs() as logs:
        await get_logger("t").awarning("w")
        await get_logger("t").aerror("e")
    assert [e["log_level"] for e in logs] == ["warning", "error"]


async def test_failing_enricher_is_recorded_and_others_still_run() -> None:
    """An enricher that raises leaves enricher_error; one returning None keeps the dict."""

    async def broken(logger: Any, method: str, event: Any) -> Any:
        raise RuntimeError("down")

    async def tagger(logger: Any, method: str, event: Any) -> None:
        event["tag"] = method

    register_enricher(broken)
    register_enricher(broken)  # registered once
    register_enricher(tagger)
    try:
        with capture_logs() as logs:
            await get_logger("t").ainfo("hello")
    finally:
        assert remove_enricher(broken) and remove_enricher(tagger)
    assert not remove_enricher(tagger)
    assert logs[0]["enricher_error"] == "broken: RuntimeError: down"
    assert logs[0]["tag"] == "info"


def test_register_enricher_refuses_non_callables() -> None:
    """register_enricher(not a function) is a TypeError."""
    with pytest.raises(TypeError, match="callable"):
        register_enricher("nope")  # type: ignore[arg-type]


async def test_flush_with_nothing_pending_returns() -> None:
    """flush_enrichers with no pending event returns at once."""
    flush = flush_enrichers()
    with pytest.raises(StopIteration):  # done on its first step: it never waited
        flush.send(None)


# --- flext_api_create_client ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "http://h", "colour": "red"}, "unknown client setting(s) ['colour']"),
        ({"base_url": "http://h", "timeout": -1}, "timeout"),
        ({"base_url": "ftp://h"}, "unsupported URL scheme 'ftp'"),
    ],
)
def test_bad_client_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    """Unknown keys, bad values and unusable URLs are CONFIG_ERROR failures naming them."""
    result = create_flext_api().flext_api_create_client(settings)
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.error is not None and message in result.error


def test_client_settings_must_be_a_dict() -> None:
    """Settings that are not a mapping are a CONFIG_ERROR failure."""
    result = create_flext_api().flext_api_create_client(["base_url"])  # type: ignore[arg-type]
    assert result.error == "client settings must be a dict, got list"


def test_unknown_request_option_is_invalid_request() -> None:
    """An option the client does not know is an INVALID_REQUEST failure, nothing is sent."""
    made = create_flext_api().flext_api_create_client({"base_url": "http://127.0.0.1:9"})
    with made.data as client:
        result = client.put("/x", colour="red")
        assert repr(client).startswith("<FlextDictClient")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert result.error is not None and "['colour']" in result.error


def test_facade_create_app_uses_the_flat_settings() -> None:
    """create_flext_api(FlextApiConfig(title=...)).create_app() titles the app."""
    app = create_flext_api(FlextApiConfig(title="Shop")).create_app()
    assert app.title == "Shop"


def test_server_config_unchanged_without_flat_settings() -> None:
    """Without flat settings server_config() is the nested server config itself."""
    config = FlextApiConfig()
    assert config.server_config() is config.server


# --- AsyncSmartCache internals used by the guide ----------------------------------------------


async def test_entries_view_reads_lists_and_deletes() -> None:
    """_cache reads values, lists keys, and del of a missing key is a KeyError."""
    async with AsyncSmartCache() as cache:
        await cache.set("a", 1)
        view = cache._cache
        assert (view["a"], list(view), len(view)) == (1, ["a"], 1)
        assert repr(view).startswith("<EntriesView of ")
        with pytest.raises(KeyError):
            view["missing"]
        with pytest.raises(KeyError):
            del view["missing"]
        async with cache._lock:
            del view["a"]
        assert "a" not in cache
        assert cache._lock is cache._lock


async def test_discard_also_deletes_the_shared_copy() -> None:
    """discard() drops the key locally and, through a task, from the shared backend."""
    from flext_api.cache import FlextApiCache

    shared = FlextApiCache("memory")
    async with AsyncSmartCache(backend=shared) as cache:
        await cache.set("k", 1)
        assert await shared.get("smart:k") is not None
        assert cache.discard("k")
        for _ in range(100):
            if await shared.get("smart:k") is None:
                break
            await asyncio.sleep(0.01)
        assert await shared.get("smart:k") is None


async def test_warm_reports_a_fresh_failure() -> None:
    """warm() reports the exception of a computation that failed in its own call."""
    async with AsyncSmartCache() as cache:

        def boom() -> int:
            raise ValueError("x")

        report = await cache.warm({"k": boom})
    assert isinstance(report.failed["k"], ValueError)


# --- filesystem cleanup_interval --------------------------------------------------------------


async def test_cleanup_interval_sweeps_expired_files(tmp_path: Any) -> None:
    """A write after cleanup_interval removes files that have expired meanwhile."""
    clock = FakeClock()
    backend = FilesystemBackend(tmp_path, cleanup_interval=10, clock=clock)
    await backend.set("old", b"x", 5)
    clock.advance(11)
    await backend.set("new", b"y", None)
    assert len(list(backend._entry_files())) == 1


def test_cleanup_interval_must_be_positive(tmp_path: Any) -> None:
    """cleanup_interval <= 0 is refused."""
    with pytest.raises(ValueError, match="cleanup_interval"):
        FilesystemBackend(tmp_path, cleanup_interval=0)


def test_config_error_names_a_bad_flat_setting() -> None:
    """A bad flat CORS value is a ConfigError naming the field."""
    with pytest.raises(ConfigError, match="cors"):
        FlextApiConfig(cors_origins=["*"], cors_credentials=True).server_config()


def test_builtin_progress_callback_is_the_modern_shape() -> None:
    """A callable without a readable signature is taken as the BatchProgress shape."""
    assert not takes_counts(print)


async def test_warm_reports_a_cached_failure() -> None:
    """warm() reports the original exception of a failure already cached."""
    async with AsyncSmartCache() as cache:

        def boom() -> int:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await cache.get_or_compute("k", boom)
        report = await cache.warm({"k": boom})
    assert isinstance(report.failed["k"], ValueError)


def test_signature_less_builtin_is_the_modern_shape() -> None:
    """A builtin without a signature is taken as a BatchProgress callback."""
    assert not takes_counts(max)


def test_dict_client_verbs_send_their_methods(httpbin_server: Any) -> None:
    """post(data=...), patch and delete reach httpbin with their methods."""
    made = create_flext_api().flext_api_create_client({"base_url": httpbin_server.url})
    with made.data as client:
        posted = client.post("/post", {"a": "1"})
        patched = client.patch("/patch", json={"b": 2})
        deleted = client.delete("/delete")
    assert posted.data["data"]["form"] == {"a": "1"}
    assert patched.data["data"]["json"] == {"b": 2}
    assert deleted.data["status_code"] == 200
