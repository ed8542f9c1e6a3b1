"""AppPluginManager: the seed's register/get/discover/initialize/cleanup, and the factory."""

from __future__ import annotations

import asyncio
import io
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from flext_api import ErrorCode
from flext_api.composition import AppPlugin, AppPluginManager
from tests._modules import forget_package
from tests.server.helpers import build_app, serve
from tests.servers.redis_server import RedisServer

Plugin = AppPlugin
PluginManager = AppPluginManager


class Recorder(AppPlugin):
    """Records its lifecycle in a shared list."""

    def __init__(self, name: str, events: list[str], *, fail: bool = False) -> None:
        self.name, self.events, self.fail = name, events, fail

    async def initialize(self, app: Any) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.events.append(f"init {self.name}")

    def cleanup(self) -> None:
        self.events.append(f"cleanup {self.name}")


@pytest.mark.integration
async def test_seed_cache_plugin_runs_against_redis(redis_server: RedisServer) -> None:
    """The seed's CachePlugin connects to Redis on startup and closes it on shutdown."""

    class CachePlugin(Plugin):
        def __init__(self) -> None:
            self.cache: Any = None

        async def initialize(self, app: Any) -> None:
            self.cache = aioredis.from_url(redis_server.url)
            app.state.cache = self.cache

        async def cleanup(self) -> None:
            if self.cache:
                await self.cache.aclose()

    app = SimpleNamespace(state=SimpleNamespace())
    plugin_manager = PluginManager()
    plugin_manager.register("cache", CachePlugin())

    async def startup() -> None:
        await plugin_manager.initialize(app)

    async def shutdown() -> None:
        await plugin_manager.cleanup()

    await startup()
    assert await app.state.cache.ping() is True
    await shutdown()
    assert plugin_manager.get("cache") is not None


def test_discover_registers_plugins_of_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """discover(package) instantiates each AppPlugin subclass, named after its module."""
    package = tmp_path / "my_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "audit.py").write_text(
        textwrap.dedent(
            """
            from flext_api.composition import AppPlugin

            class AuditPlugin(AppPlugin):
                def initialize(self, app): pass
                def cleanup(self): pass
            """
        )
    )
    (package / "broken.py").write_text("raise ImportError('missing dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forget_package(monkeypatch, "my_plugins")  # not one another test imported
    manager = PluginManager()
    result = manager.discover("my_plugins")
    assert manager.names == ["audit"]
    assert result.is_failure and result.error_code is ErrorCode.PLUGIN_ERROR
    assert list(result.exception.details["failures"]) == ["broken"]  # type: ignore[union-attr]


def test_discover_of_a_missing_package_is_a_failure() -> None:
    """discover() of a package that does not exist returns a PLUGIN_ERROR failure."""
    result = PluginManager().discover("no_such_plugins_pkg")
    assert result.is_failure and "not found" in (result.error or "")


def test_discover_entry_points_of_an_empty_group_finds_nothing() -> None:
    """An entry-point group nobody advertises loads no plugin and succeeds."""
    result = PluginManager().discover_entry_points("flext_api.no_such_group")
    assert result.value == []


async def test_initialize_in_order_cleanup_in_reverse() -> None:
    """Plugins start in registration order and clean up in reverse."""
    events: list[str] = []
    manager = PluginManager()
    manager.register("a", Recorder("a", events))
    manager.register("b", Recorder("b", events))
    assert (await manager.initialize(object())).is_success
    assert (await manager.cleanup()).is_success
    assert events == ["init a", "init b", "cleanup b", "cleanup a"]


async def test_failing_plugin_stops_start_and_rolls_back() -> None:
    """With fail_fast, a failing plugin's error is returned and earlier ones cleaned up."""
    events: list[str] = []
    manager = PluginManager()
    manager.register("a", Recorder("a", events))
    manager.register("b", Recorder("b", events, fail=True))
    manager.register("c", Recorder("c", events))
    result = await manager.initialize(object())
    assert result.is_failure and result.error_code is ErrorCode.PLUGIN_ERROR
    assert "b" in (result.error or "")
    assert events == ["init a", "cleanup a"]


async def test_failing_plugin_is_skipped_when_not_fail_fast() -> None:
    """With fail_fast=False the others start, initialize succeeds, skipped keeps the error."""
    events: list[str] = []
    manager = PluginManager(fail_fast=False)
    manager.register("a", Recorder("a", events, fail=True))
    manager.register("b", Recorder("b", events))
    result = await manager.initialize(object())
    assert result.is_success
    assert events == ["init b"]
    assert manager.skipped == {"a": "RuntimeError: a cannot start"}
    assert repr(manager) == "<AppPluginManager ['a', 'b'] initialized=['b'] skipped=['a']>"


async def test_cleanup_failure_is_reported_and_others_clean_up() -> None:
    """A cleanup raising is reported; the remaining plugins still clean up."""
    events: list[str] = []

    class BadCleanup(Recorder):
        def cleanup(self) -> None:
            raise RuntimeError("stuck")

    manager = PluginManager()
    manager.register("a", Recorder("a", events))
    manager.register("b", BadCleanup("b", events))
    await manager.initialize(object())
    result = await manager.cleanup()
    assert result.is_failure and "b" in (result.error or "")
    assert events == ["init a", "init b", "cleanup a"]


def test_register_refuses_duplicates_and_non_plugins() -> None:
    """A taken name is a ValueError; an object without the hooks a TypeError."""
    manager = PluginManager()
    manager.register("a", Recorder("a", []))
    with pytest.raises(ValueError, match="already registered"):
        manager.register("a", Recorder("a", []))
    with pytest.raises(TypeError, match="initialize"):
        manager.register("b", object())  # type: ignore[arg-type]
    assert manager.get("missing") is None
    assert [plugin.name for plugin in manager] == ["a"]  # type: ignore[attr-defined]


async def test_factory_runs_plugins_with_the_app() -> None:
    """create_fastapi_app(plugins=) initializes at start-up and cleans up at shutdown."""
    events: list[str] = []
    manager = PluginManager()
    manager.register("a", Recorder("a", events))
    app = build_app(stream=io.StringIO(), plugins=manager)
    async with serve(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert events == ["init a"]
    assert events == ["init a", "cleanup a"]
    assert app.state.plugins is manager


async def test_factory_refuses_to_start_when_a_plugin_fails() -> None:
    """A failing plugin makes the app's start-up raise the PLUGIN_ERROR."""
    manager = PluginManager()
    manager.register("bad", Recorder("bad", [], fail=True))
    app = build_app(stream=io.StringIO(), plugins=manager)
    with pytest.raises(Exception, match="PLUGIN_ERROR"):
        async with serve(app):
            pass


def test_repr_names_plugins() -> None:
    """The repr lists the registered and initialized plugin names."""
    manager = PluginManager()
    manager.register("a", Recorder("a", []))
    assert repr(manager) == "<AppPluginManager ['a'] initialized=[]>"


def test_discover_entry_points_registers_classes_and_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Entry points naming a class or an instance are registered; a broken one is reported."""
    from importlib.metadata import EntryPoint

    from flext_api.composition import _plugins

    points = [
        EntryPoint("audit", "tests.composition.test_plugins:AuditFromEntryPoint", "g"),
        EntryPoint("ready", "tests.composition.test_plugins:READY_PLUGIN", "g"),
        EntryPoint("broken", "tests.composition.no_such_module:Plugin", "g"),
    ]
    monkeypatch.setattr(_plugins, "entry_points", lambda group: points)
    manager = PluginManager()
    result = manager.discover_entry_points("g")
    assert manager.names == ["audit", "ready"]
    assert result.is_failure and "broken" in (result.error or "")


class AuditFromEntryPoint(AppPlugin):
    """A plugin class advertised by an entry point."""

    def initialize(self, app: Any) -> None:
        pass

    def cleanup(self) -> None:
        pass


READY_PLUGIN = AuditFromEntryPoint()


async def test_initialize_twice_does_not_restart_plugins() -> None:
    """A second initialize() skips plugins already initialized."""
    events: list[str] = []
    manager = PluginManager()
    manager.register("a", Recorder("a", events))
    await manager.initialize(object())
    await manager.initialize(object())
    assert events == ["init a"]


# -- bad inputs -------------------------------------------------------------------------
def test_register_refuses_a_bad_name_or_a_plugin_class() -> None:
    """A non-str or empty name, or a class instead of an instance, is refused at once."""
    manager = PluginManager()
    with pytest.raises(TypeError, match="name must be a str, got int"):
        manager.register(5, Recorder("a", []))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name cannot be empty"):
        manager.register("", Recorder("a", []))
    with pytest.raises(TypeError, match=r"is the class Recorder: register an instance"):
        manager.register("rec", Recorder)  # type: ignore[arg-type]
    assert manager.names == []


def test_discover_of_a_package_that_raises_on_import_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin package whose __init__ raises gives a PLUGIN_ERROR failure, not the raise."""
    package = tmp_path / "raising_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('no config file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = PluginManager().discover("raising_plugins")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.error == (
        "plugin package 'raising_plugins' failed to import: RuntimeError: no config file"
    )
    assert isinstance(result.exception.__cause__, RuntimeError)  # type: ignore[union-attr]


def test_discover_of_an_empty_or_relative_name_is_a_failure() -> None:
    """discover("") and discover("..x") return failures; discover(5) is a TypeError."""
    for name in ("", "..x"):
        assert PluginManager().discover(name).error_code is ErrorCode.PLUGIN_ERROR
    with pytest.raises(TypeError, match=r"discover\(\) takes a package name"):
        PluginManager().discover(5)  # type: ignore[arg-type]


async def test_rollback_cleanup_failures_are_reported_with_the_start_failure() -> None:
    """When a failed start's rollback fails too, both failures are in the result."""
    events: list[str] = []

    class BadCleanup(Recorder):
        def cleanup(self) -> None:
            raise RuntimeError("stuck")

    manager = PluginManager()
    manager.register("a", BadCleanup("a", events))
    manager.register("b", Recorder("b", events, fail=True))
    result = await manager.initialize(object())
    details = result.exception.details  # type: ignore[union-attr]
    assert details["failures"] == {"b": "RuntimeError: b cannot start"}
    assert details["cleanup_failures"] == {"a": "RuntimeError: stuck"}


# -- start-up that fails or is cut short --------------------------------------------------
async def test_factory_starts_without_the_failing_plugin_when_not_fail_fast() -> None:
    """fail_fast=False: the app starts with the others and cleans them up at shutdown."""
    events: list[str] = []
    manager = PluginManager(fail_fast=False)
    manager.register("db", Recorder("db", events))
    manager.register("metrics", Recorder("metrics", events, fail=True))
    manager.register("cache", Recorder("cache", events))
    app = build_app(stream=io.StringIO(), plugins=manager)
    async with serve(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert events == ["init db", "init cache"]
    assert events == ["init db", "init cache", "cleanup cache", "cleanup db"]
    assert list(manager.skipped) == ["metrics"]


async def test_factory_cleans_up_started_plugins_when_fail_fast_stops_the_start() -> None:
    """fail_fast: the app does not start and the plugins that had started are cleaned up."""
    events: list[str] = []
    manager = PluginManager()
    manager.register("db", Recorder("db", events))
    manager.register("cache", Recorder("cache", events))
    manager.register("metrics", Recorder("metrics", events, fail=True))
    app = build_app(stream=io.StringIO(), plugins=manager)
    with pytest.raises(Exception, match="PLUGIN_ERROR"):
        async with serve(app):
            pass
    assert events == ["init db", "init cache", "cleanup cache", "cleanup db"]


async def test_cancelled_start_cleans_up_the_plugins_that_started() -> None:
    """A plugin's initialize cancelled mid-start: the started ones are cleaned up, it raises."""
    events: list[str] = []
    hanging = asyncio.Event()

    class Hangs(Recorder):
        async def initialize(self, app: Any) -> None:
            events.append("hanging")
            hanging.set()
            await asyncio.Event().wait()

    manager = PluginManager(fail_fast=False)
    manager.register("db", Recorder("db", events))
    manager.register("slow", Hangs("slow", events))
    task = asyncio.create_task(manager.initialize(object()))
    await hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["init db", "hanging", "cleanup db"]
    assert repr(manager) == "<AppPluginManager ['db', 'slow'] initialized=[]>"


async def test_plugins_are_cleaned_up_when_a_later_part_fails_to_start() -> None:
    """The event bus failing to start after the plugins did: the plugins are cleaned up."""
    from flext_api.composition import EventBus

    class BrokenTransport:
        async def send(self, event: object) -> None:
            pass

        async def start(self, bus: EventBus) -> None:
            raise ConnectionError("broker down")

        async def stop(self) -> None:
            pass

    events: list[str] = []
    manager = PluginManager()
    manager.register("db", Recorder("db", events))
    app = build_app(
        stream=io.StringIO(), plugins=manager, event_bus=EventBus(transport=BrokenTransport())
    )
    with pytest.raises(ConnectionError, match="broker down"):
        async with serve(app):
            pass
    assert events == ["init db", "cleanup db"]


def _docs_cache_plugin_example() -> str:
    """The App plugins example of docs/composition.md, as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "composition.md").read_text()
    blocks: list[str] = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    [block] = [b for b in blocks if "class CachePlugin" in b]
    return block


@pytest.mark.integration
async def test_docs_cache_plugin_example_runs_and_closes_its_client(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The docs' CachePlugin, run as written: app.state.cache works, shutdown closes it."""
    namespace: dict[str, Any] = {"url": redis_server.url}
    exec(compile(_docs_cache_plugin_example(), "docs/composition.md", "exec"), namespace)
    admin = aioredis.from_url(redis_server.url)
    try:
        before = len(await admin.client_list())
        async with serve(namespace["app"]):
            assert await namespace["app"].state.cache.ping() is True
            assert len(await admin.client_list()) == before + 1
        for _ in range(200):  # the server notices the closed socket shortly after
            if len(await admin.client_list()) == before:
                break
            await asyncio.sleep(0.05)
        assert len(await admin.client_list()) == before
    finally:
        await admin.aclose()
    assert "failed to clean up" not in caplog.text


class StrayCancel(AppPlugin):
    """Its hooks await a future some other task cancelled (a stray CancelledError)."""

    def __init__(self, *, on: str) -> None:
        self.on = on

    async def _stray(self) -> None:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future

    async def initialize(self, app: Any) -> None:
        if self.on == "initialize":
            await self._stray()

    async def cleanup(self) -> None:
        if self.on == "cleanup":
            await self._stray()


async def test_cleanup_raising_a_stray_cancelled_error_is_reported_and_others_clean_up() -> None:
    """A stray CancelledError in one cleanup is that plugin's failure; the rest still stop."""
    events: list[str] = []
    manager = AppPluginManager()
    manager.register("first", Recorder("first", events))
    manager.register("stray", StrayCancel(on="cleanup"))
    assert (await manager.initialize(None)).is_success
    result = await manager.cleanup()
    assert events == ["init first", "cleanup first"]
    assert result.is_failure and result.exception is not None
    assert result.exception.details["failures"] == {"stray": "CancelledError: "}


async def test_initialize_raising_a_stray_cancelled_error_is_a_plugin_failure() -> None:
    """A stray CancelledError in initialize fails the start like any error of the plugin."""
    events: list[str] = []
    manager = AppPluginManager()
    manager.register("first", Recorder("first", events))
    manager.register("stray", StrayCancel(on="initialize"))
    result = await manager.initialize(None)
    assert result.is_failure and result.error_code is ErrorCode.PLUGIN_ERROR
    assert events == ["init first", "cleanup first"]
