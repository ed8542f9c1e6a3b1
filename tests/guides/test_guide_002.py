"""Seed 002 (Architecture): cache configs, app config, FLEXT middleware, startup hooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from flext_api import FlextApiCache, FlextApiConfig, FlextResult, create_fastapi_app
from flext_api._errors import ConfigError
from flext_api.cache import FilesystemBackend, MemoryBackend, RedisBackend
from flext_api.cache._seed_config import seed_options
from flext_api.middleware import FlextApiMiddleware, PerformanceMonitoringMiddleware
from tests.guides.seed import s002_server as guide
from tests.server.helpers import serve
from tests.servers.redis_server import RedisServer

# --- Cache Configuration -------------------------------------------------------------------


async def test_redis_cache_from_the_guide_keys(redis_server: RedisServer) -> None:
    """host/port/db/password/decode_responses configure a working Redis cache."""
    redis_cache = FlextApiCache(
        backend="redis",
        config={
            "host": "127.0.0.1",
            "port": redis_server.port,
            "db": 0,
            "password": os.getenv("FLEXT_TEST_UNSET_REDIS_PASSWORD"),
            "decode_responses": True,
        },
    )
    async with redis_cache:
        await redis_cache.set("guide:user", {"name": "Ada"})
        assert await redis_cache.get("guide:user") == {"name": "Ada"}
    assert isinstance(redis_cache.backend, RedisBackend)


def test_redis_password_and_db_go_into_the_url() -> None:
    """A password (escaped) and a db number end up in the Redis URL."""
    options = seed_options("redis", {"host": "cache", "port": 6380, "db": 2, "password": "p@ss"})
    assert options == {"url": "redis://:p%40ss@cache:6380/2"}


def test_redis_defaults_and_user() -> None:
    """Missing parts default to localhost:6379/0; a username without password is kept."""
    assert seed_options("redis", {"username": "app"}) == {"url": "redis://app@localhost:6379/0"}
    assert seed_options("redis", {"host": "::1"})["url"] == "redis://[::1]:6379/0"


async def test_memory_cache_from_the_guide_keys() -> None:
    """max_size bounds the entries and ttl is the default lifetime."""
    memory_cache = FlextApiCache(backend="memory", config={"max_size": 1000, "ttl": 300})
    assert isinstance(memory_cache.backend, MemoryBackend)
    assert memory_cache.backend.max_entries == 1000
    assert memory_cache.default_ttl == 300


async def test_filesystem_cache_from_the_guide_keys(tmp_path: Path) -> None:
    """cache_dir, max_size and cleanup_interval configure a working filesystem cache."""
    file_cache = FlextApiCache(
        backend="filesystem",
        config={
            "cache_dir": str(tmp_path / "flext-cache"),
            "max_size": 100 * 1024 * 1024,  # 100MB
            "cleanup_interval": 3600,  # Cleanup every hour
        },
    )
    backend = file_cache.backend
    assert isinstance(backend, FilesystemBackend)
    assert (backend.max_bytes, backend.cleanup_interval) == (100 * 1024 * 1024, 3600)
    await file_cache.set("k", b"v")
    assert await file_cache.get("k") == b"v"


@pytest.mark.parametrize(
    ("backend", "config", "message"),
    [
        ("memory", {"max_size": 1, "max_entries": 2}, "both 'max_size' and 'max_entries'"),
        ("redis", {"host": "h", "url": "redis://h"}, "both 'url' and ['host']"),
        ("redis", {"host": "h", "decode_responses": "yes"}, "decode_responses must be"),
    ],
)
def test_conflicting_or_bad_seed_keys_are_config_errors(
    backend: str, config: dict[str, Any], message: str
) -> None:
    """A guide key beside its modern twin, or a bad value, is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FlextApiCache(backend, config)


# --- Application Factory -------------------------------------------------------------------


async def test_app_factory_takes_the_guide_config() -> None:
    """title, version, description and the docs URLs of FlextApiConfig reach the app."""
    app = guide.build_app()
    async with serve(app) as client:
        openapi = (await client.get("/openapi.json")).json()
        docs = await client.get("/api-docs")
    assert (app.title, app.version, app.description) == (
        "Orders API",
        "2.1.0",
        "Orders of the FLEXT shop",
    )
    assert openapi["info"]["description"] == "Orders of the FLEXT shop"
    assert docs.status_code == 200


async def test_app_factory_applies_the_guide_cors_settings() -> None:
    """cors_origins/credentials/methods/headers answer a preflight from the origin."""
    async with serve(guide.build_app()) as client:
        response = await client.options(
            "/health",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_bad_guide_config_is_a_config_error() -> None:
    """A docs_url that is not a path is reported by field."""
    with pytest.raises(ConfigError, match="docs_url"):
        create_fastapi_app(FlextApiConfig(docs_url="api-docs"))


# --- FLEXT middleware ------------------------------------------------------------------------


def _with(*middlewares: FlextApiMiddleware) -> FastAPI:
    app = create_fastapi_app()

    # Not /health: the factory answers its probes before added middleware runs.
    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/echo-context")
    async def echo(request: Request) -> dict[str, Any]:
        return {"context": getattr(request.state, "business_context", None)}

    @app.post("/orders")
    async def create_order() -> dict[str, str]:
        return {"status": "created"}

    for middleware in middlewares:
        app.add_middleware(middleware)
    return app


async def test_custom_business_middleware_context_reaches_the_handler() -> None:
    """An attribute set on the request in process_request is in request.state."""
    app = _with(guide.CustomBusinessMiddleware())
    async with serve(app) as client:
        body = (await client.get("/echo-context", headers={"X-Tenant-ID": "t1"})).json()
    assert body == {"context": {"tenant_id": "t1", "user_role": None}}


async def test_security_middleware_rate_limits_per_minute() -> None:
    """Past max_requests_per_minute one client's requests are refused."""

    class Strict(guide.ComprehensiveSecurityMiddleware):
        max_requests_per_minute = 2

    async with serve(_with(Strict())) as client:
        statuses = [(await client.get("/ping")).status_code for _ in range(3)]
        refused = await client.get("/ping")
    assert statuses == [200, 200, 400]
    assert refused.json()["detail"] == "Rate limit exceeded"


async def test_security_middleware_refuses_a_bad_content_type() -> None:
    """A POST with a text/plain body fails validate_request."""
    async with serve(_with(guide.ComprehensiveSecurityMiddleware())) as client:
        response = await client.post(
            "/orders", content=b"x", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid content type"


async def test_security_middleware_base_checks_use_specific_statuses() -> None:
    """The base class answers 429, 413 and 415 for its own checks."""
    from flext_api.middleware import SecurityMiddleware

    class Small(SecurityMiddleware):
        max_request_size = 4
        max_requests_per_minute = 3

    async with serve(_with(Small())) as client:
        too_big = await client.post("/orders", content=b"12345")
        wrong = await client.post("/orders", content=b"1", headers={"Content-Type": "text/csv"})
        ok = await client.post("/orders", json=1)
        limited = await client.post("/orders", json=1)
    assert [too_big.status_code, wrong.status_code, ok.status_code] == [413, 415, 200]
    assert limited.status_code == 429


class Recorder:
    """The metrics client the guide leaves to the reader."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def record_request_start(self, **fields: Any) -> None:
        self.calls.append(("start", fields))

    def record_request_complete(self, **fields: Any) -> None:
        self.calls.append(("complete", fields))


async def test_performance_middleware_records_and_tags_the_response() -> None:
    """The guide's middleware records start and completion and adds its headers."""
    metrics = Recorder()
    async with serve(_with(guide.DetailedPerformanceMiddleware(metrics))) as client:
        response = await client.get("/ping", headers={"User-Agent": "guide"})
    (start_kind, start), (done_kind, done) = metrics.calls
    assert (start_kind, start["path"], start["user_agent"]) == ("start", "/ping", "guide")
    assert (done_kind, done["status_code"]) == ("complete", 200)
    assert done["response_size"] == len(response.content)
    # The guide's middleware invents its own ID; the factory's (the one it logs) is the one
    # sent, once, and the timing header is sent once too.
    (request_id,) = response.headers.get_list("x-request-id")
    (timing,) = response.headers.get_list("x-response-time")
    assert request_id != start["request_id"]
    assert timing.endswith("ms")


async def test_performance_base_keeps_an_incoming_request_id() -> None:
    """The base class keeps X-Request-ID and reports X-Response-Time."""
    async with serve(_with(PerformanceMonitoringMiddleware())) as client:
        response = await client.get("/ping", headers={"X-Request-ID": "req-1"})
    assert response.headers["x-request-id"] == "req-1"
    assert "x-response-time" in response.headers


async def test_failing_process_response_is_a_server_error() -> None:
    """A process_response failure turns the answer into a 500 problem."""

    class Broken(FlextApiMiddleware):
        async def process_response(
            self, request: Any, response: Any
        ) -> FlextResult[dict[str, Any]]:
            return FlextResult.fail("cannot finish")

    async with serve(_with(Broken())) as client:
        response = await client.get("/ping")
    assert response.status_code == 500


# --- startup hooks -------------------------------------------------------------------------


class Setup:
    """Records setup() calls (the guide's metrics and tracer objects)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def setup(self, **fields: Any) -> None:
        self.calls.append(fields)

    def generate_latest(self) -> bytes:
        return b""


async def test_on_event_startup_runs_under_the_factory_lifespan() -> None:
    """@app.on_event("startup") handlers run when an app of the factory starts."""
    app = create_fastapi_app()
    metrics, tracer = Setup(), Setup()
    with pytest.warns(DeprecationWarning, match="on_event is deprecated"):
        guide.register_monitoring(app, metrics, tracer)
    async with serve(app):
        assert metrics.calls == [{"namespace": "flext_api", "subsystem": "http"}]
        assert tracer.calls == [{"service_name": "flext-api"}]


async def test_shutdown_handlers_run_before_resources_close() -> None:
    """Sync and async shutdown handlers run when the app stops."""
    app = create_fastapi_app()
    seen: list[str] = []

    async def bye() -> None:
        seen.append("async")

    app.router.add_event_handler("shutdown", bye)
    app.router.add_event_handler("shutdown", lambda: seen.append("sync"))
    async with serve(app):
        assert seen == []
    assert seen == ["async", "sync"]
