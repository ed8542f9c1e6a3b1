"""The reloader's refusals and the settings it keeps until a restart (no server needed)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flext_api import ErrorCode
from flext_api.gateway._app import Gateway
from flext_api.gateway._config import GatewayConfig
from flext_api.gateway._reload import Reloader
from flext_api.server._logging import make_json_logger


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "clusters": [
            {"name": "c", "instances": [{"url": "http://127.0.0.1:9"}], "health": {"active": False}}
        ],
        "routes": [{"name": "r", "cluster": "c", "match": {"path_prefix": "/"}}],
        "watch": False,
        **extra,
    }


def _gateway(data: dict[str, Any]) -> tuple[Gateway, io.StringIO]:
    log = io.StringIO()
    gateway = Gateway(GatewayConfig.model_validate(data), access_log=make_json_logger(log))
    return gateway, log


def _records(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def _refused(reloader: Reloader) -> float:
    return reloader.gateway.metrics.reloads.labels("refused")._value.get()  # type: ignore[no-any-return]


async def test_a_config_that_fails_to_apply_is_refused_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid file whose snapshot cannot be built: refused, counted and logged like an
    invalid one, the old config kept; the reloader (and so the file watch) carries on."""
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    gateway, log = _gateway(_config())
    await gateway.start()
    old = gateway.snapshot
    reloader = Reloader(gateway, path)

    async def broken(config: GatewayConfig) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(gateway, "apply", broken)
    try:
        result = await reloader.reload()
        assert result.error_code is ErrorCode.CONFIG_ERROR
        assert isinstance(result.exception and result.exception.__cause__, OSError)
        assert "could not be applied" in (result.error or "")
        assert gateway.snapshot is old and _refused(reloader) == 1
        [record] = [r for r in _records(log) if r["event"] == "config reload refused"]
        assert "Too many open files" in record["error"]
        monkeypatch.undo()
        assert (await reloader.reload()).is_success  # the next edit still applies
    finally:
        await gateway.aclose()


async def test_startup_settings_are_kept_as_running_and_named(tmp_path: Path) -> None:
    """A reload that changes the listener or drain_timeout applies the rest of the file
    and keeps those as they run (the sockets are bound already), with a warning; the
    config the gateway reports is the one in force."""
    path = tmp_path / "gw.yaml"
    start = _config(listeners=[{"port": 8100, "header_timeout": 2}], drain_timeout=5)
    gateway, log = _gateway(start)
    await gateway.start()
    try:
        edited = _config(listeners=[{"port": 8200, "header_timeout": 1}], drain_timeout=1)
        edited["routes"][0]["name"] = "renamed"
        path.write_text(yaml.safe_dump(edited), encoding="utf-8")
        assert (await Reloader(gateway, path).reload()).is_success
        config = gateway.snapshot.config
        assert [r.name for r in config.routes] == ["renamed"]
        assert (config.listeners[0].port, config.listeners[0].header_timeout) == (8100, 2)
        assert config.drain_timeout == 5
        [warned] = [r for r in _records(log) if r["level"] == "warning"]
        assert warned["settings"] == ["drain_timeout", "listeners"]
    finally:
        await gateway.aclose()


@pytest.mark.parametrize("seconds", [0.0, 0.5, 30.0])
def test_drain_timeout_is_the_shutdown_bound_as_given(seconds: float) -> None:
    """int(0.5) or None made a drain_timeout under a second into no bound at all."""
    from flext_api.gateway._serve import uvicorn_config

    settings = uvicorn_config(object(), "127.0.0.1", 0, drain_timeout=seconds)
    assert settings.timeout_graceful_shutdown == seconds


async def test_sighup_reloads_do_not_pile_up(tmp_path: Path) -> None:
    """Each SIGHUP started a reload task kept in a list until shutdown: a storm of them
    grew the process for good. A reload task is kept only while it runs."""
    from flext_api.gateway._serve import GatewayRunner

    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    runner = GatewayRunner(GatewayConfig.model_validate(_config()), config_path=path)
    await runner.gateway.start()
    try:
        for _ in range(20):
            runner.reload_soon()  # what the SIGHUP handler calls
        running = list(runner._reloads)
        assert running  # tracked while they run...
        results = await asyncio.gather(*running)
        assert all(result.is_success for result in results)
        assert runner._reloads == set()  # ...and forgotten once done
    finally:
        await runner.gateway.aclose()


def test_the_admin_server_grace_is_short_and_within_the_drain() -> None:
    """The admin server stops after the proxy drained: a dashboard client that never
    reads held it for uvicorn's 30 s whatever ``drain_timeout`` said."""
    from flext_api.gateway._serve import ADMIN_GRACE, GatewayRunner

    for drain, expected in ((30.0, ADMIN_GRACE), (0.5, 0.5), (0.0, 0.0)):
        config = GatewayConfig.model_validate(
            _config(drain_timeout=drain, admin={"token": "t" * 32})
        )
        runner = GatewayRunner(config)
        assert runner.admin_server is not None
        assert runner.admin_server.config.timeout_graceful_shutdown == expected
