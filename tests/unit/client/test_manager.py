"""PluginManager: registration, discovery and an ordered lifecycle that survives failures."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient, FlextApiPlugin, PluginManager
from flext_api.client._plugin import CallNext
from flext_api.transports import MockTransport


class Recorder(FlextApiPlugin):
    """Records lifecycle calls into a shared list."""

    def __init__(self, name: str, log: list[str], fail: str | None = None) -> None:
        self.name = name
        self.log = log
        self.fail = fail

    async def initialize(self) -> None:
        self.log.append(f"init:{self.name}")
        if self.fail == "init":
            raise RuntimeError(f"{self.name} cannot start")

    async def cleanup(self) -> None:
        self.log.append(f"cleanup:{self.name}")
        if self.fail == "cleanup":
            raise RuntimeError(f"{self.name} cannot stop")


async def test_initialize_in_order_cleanup_in_reverse() -> None:
    """initialize runs first-to-last, cleanup last-to-first."""
    log: list[str] = []
    manager = PluginManager([Recorder("a", log), Recorder("b", log)])
    assert (await manager.initialize()).is_success
    assert (await manager.cleanup()).is_success
    assert log == ["init:a", "init:b", "cleanup:b", "cleanup:a"]


async def test_one_failure_does_not_stop_the_others() -> None:
    """A failing hook is reported with its name; the remaining hooks still run."""
    log: list[str] = []
    manager = PluginManager(
        [Recorder("a", log, fail="cleanup"), Recorder("b", log, fail="init"), Recorder("c", log)]
    )
    init = await manager.initialize()
    cleanup = await manager.cleanup()
    assert init.error_code is ErrorCode.PLUGIN_ERROR
    assert init.exception is not None and set(init.exception.details["failures"]) == {"b"}
    assert cleanup.exception is not None and set(cleanup.exception.details["failures"]) == {"a"}
    assert log == ["init:a", "init:b", "init:c", "cleanup:c", "cleanup:b", "cleanup:a"]


def test_registration_rules() -> None:
    """Names are unique; unregister returns the plugin; non-plugins are refused."""

    async def mw(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        return await call_next(request)

    manager = PluginManager()
    assert manager.register(mw) == "mw"
    with pytest.raises(ValueError, match="already registered"):
        manager.register(mw)
    assert manager.register(mw, name="again") == "again"
    assert manager.names == ["mw", "again"] and len(manager) == 2
    assert manager.get("again") is mw and manager.get("nope") is None
    assert manager.unregister("mw") is mw
    with pytest.raises(KeyError, match="no plugin named"):
        manager.unregister("mw")
    with pytest.raises(TypeError, match="must be a FlextApiPlugin"):
        manager.register(42)  # type: ignore[arg-type]
    assert list(manager) == manager.plugins == [mw]
    assert repr(manager) == "<PluginManager ['again']>"


class Discovered(FlextApiPlugin):
    """A plugin advertised through an entry point."""


def test_discover_loads_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points naming a class are instantiated; broken ones are reported, not fatal."""
    eps = [
        EntryPoint("good", f"{__name__}:Discovered", "flext_api.plugins"),
        EntryPoint("broken", "no_such_module_xyz:Thing", "flext_api.plugins"),
    ]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "flext_api.plugins"
        return eps

    monkeypatch.setattr("flext_api.client._manager.entry_points", fake_entry_points)
    manager = PluginManager()
    result = manager.discover()
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None
    assert result.exception.details["loaded"] == ["good"]
    assert "broken" in result.exception.details["failures"]
    assert isinstance(manager.get("good"), Discovered)


def test_discover_with_nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """No entry points is a success with an empty list."""
    monkeypatch.setattr("flext_api.client._manager.entry_points", lambda *, group: [])
    assert PluginManager().discover().value == []


async def test_client_runs_lifecycle_on_enter_and_exit() -> None:
    """`async with client` initializes its plugins and closing cleans them up once."""
    log: list[str] = []
    client = FlextApiClient(
        "http://svc",
        plugins=[Recorder("p", log)],
        default_plugins=False,
        transport=MockTransport(lambda r: HttpResponse(200)),
    )
    async with client:
        assert (await client.open()).is_success
    assert (await client.aclose()).is_success
    assert log == ["init:p", "cleanup:p"]


async def test_client_reports_cleanup_failure_but_closes() -> None:
    """A failing cleanup is returned by aclose and the transport is still closed."""
    log: list[str] = []
    transport = MockTransport(lambda r: HttpResponse(200))
    client = FlextApiClient(
        "http://svc",
        plugins=[Recorder("p", log, fail="cleanup")],
        transport=transport,
        default_plugins=False,
    )
    await client.open()
    result: Any = await client.aclose()
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert transport.closed
