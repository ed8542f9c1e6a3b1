"""Seed 004 (Nexios "Advanced Features"): the plugin system, run as the guide writes it."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI, Request

from flext_api.composition import AppPluginManager
from flext_api.server import create_fastapi_app
from tests._modules import forget_package
from tests.guides.seed import s004_plugins as guide
from tests.server.helpers import serve
from tests.servers.redis_server import RedisServer

# redis-py 5+ deprecates the seed's ``close()`` for ``aclose()``; it still closes (checked).
SEED_CLOSE = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_other_my_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide discovers ``my_plugins``: never one another test imported."""
    forget_package(monkeypatch, "my_plugins")


def _app(plugin_manager: AppPluginManager) -> FastAPI:
    app = create_fastapi_app()
    with pytest.warns(DeprecationWarning, match="on_event is deprecated"):
        guide.register_lifecycle(app, plugin_manager)

    @app.get("/cache-ping")
    async def cache_ping(request: Request) -> dict[str, bool]:
        return {"pong": await request.app.state.cache.ping()}

    return app


async def _clients(url: str) -> int:
    admin = aioredis.from_url(url)
    try:
        listed = await admin.client_list()
    finally:
        await admin.aclose()
    return len(listed)


@SEED_CLOSE
async def test_cache_plugin_connects_at_startup_and_closes_at_shutdown(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's CachePlugin puts a live Redis client in app.state and closes it at shutdown."""
    monkeypatch.setattr(guide, "REDIS_URL", redis_server.url)
    plugin_manager = guide.build_plugin_manager()
    before = await _clients(redis_server.url)
    async with serve(_app(plugin_manager)) as client:
        response = await client.get("/cache-ping")
        assert await _clients(redis_server.url) == before + 1
    assert (response.status_code, response.json()) == (200, {"pong": True})
    assert await _clients(redis_server.url) == before
    assert isinstance(plugin_manager.get("cache"), guide.CachePlugin)


async def test_discover_of_a_missing_package_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """plugin_manager.discover("my_plugins") with no such package logs and the app still starts."""
    with caplog.at_level(logging.ERROR, "flext_api.composition.plugins"):
        plugin_manager = guide.build_plugin_manager()
    assert plugin_manager.names == ["cache"]
    assert "'my_plugins' not found" in caplog.text


@SEED_CLOSE
async def test_discovered_plugins_start_and_stop_with_the_app(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugins found in my_plugins are named after their module and run the app lifecycle."""
    package = tmp_path / "my_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "audit.py").write_text(
        textwrap.dedent(
            """
            from flext_api.composition import AppPlugin as Plugin

            EVENTS = []

            class AuditPlugin(Plugin):
                def initialize(self, app):
                    EVENTS.append("initialize")
                    app.state.audit = self

                def cleanup(self):
                    EVENTS.append("cleanup")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(guide, "REDIS_URL", redis_server.url)
    plugin_manager = guide.build_plugin_manager()
    assert plugin_manager.names == ["cache", "audit"]
    audit_module = __import__("my_plugins.audit", fromlist=["EVENTS"])
    async with serve(_app(plugin_manager)) as client:
        assert (await client.get("/cache-ping")).json() == {"pong": True}
        assert audit_module.EVENTS == ["initialize"]
    assert audit_module.EVENTS == ["initialize", "cleanup"]
