"""``flext-api gateway check FILE`` and argument errors of ``flext-api gateway``."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flext_api.cli._app import app

runner = CliRunner()


def test_check_valid_file() -> None:
    """A valid config prints a summary and exits 0."""
    result = runner.invoke(app, ["gateway", "check", "examples/gateway.yaml"])
    assert result.exit_code == 0
    assert "ok: examples/gateway.yaml (3 routes, 1 clusters, 2 instances)" in result.output


def test_check_invalid_file_lists_errors(tmp_path: Path) -> None:
    """An invalid config prints each error with its line and exits 1."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "clusters: [{name: c, instances: [{url: 'http://h:1'}]}]\n"
        "routes: [{name: r, match: {path: nope}, cluster: c}]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["gateway", "check", str(path)])
    assert result.exit_code == 1
    assert "routes[0].match.path (line 2): 'nope' must start with '/'" in result.output


def test_serve_invalid_config_exits_1(tmp_path: Path) -> None:
    """Serving an invalid config refuses to start."""
    path = tmp_path / "bad.yaml"
    path.write_text("routes: []\n", encoding="utf-8")
    result = runner.invoke(app, ["gateway", "--config", str(path)])
    assert result.exit_code == 1
    assert "clusters" in result.output


def test_gateway_without_config_shows_help() -> None:
    """``flext-api gateway`` with no --config prints help and exits 2."""
    result = runner.invoke(app, ["gateway"])
    assert result.exit_code == 2
    assert "--config" in result.output


def test_admin_port_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """The admin API's port taken by another socket: one line naming it, exit 3 (it was
    a page of tracebacks from uvicorn's exit inside a task)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        path = tmp_path / "gw.yaml"
        path.write_text(
            "clusters: [{name: c, instances: [{url: 'http://127.0.0.1:9'}],"
            " health: {active: false}}]\n"
            "routes: [{name: r, match: {path_prefix: /}, cluster: c}]\n"
            f"admin: {{token: t0kent0kent0ken0, port: {port}}}\nwatch: false\n",
            encoding="utf-8",
        )
        result = runner.invoke(app, ["gateway", "--config", str(path), "--port", "0"])
    finally:
        taken.close()
    assert result.exit_code == 3
    assert f"the admin API cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_serving_without_the_gateway_extra_is_a_hint_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check`` needs only the base install, serving needs the gateway extra: without
    wsproto (an image built with the server extra only) the gateway crashed in uvicorn's
    start-up with a traceback; it names the extra and exits 1."""
    monkeypatch.setitem(sys.modules, "wsproto", None)  # import wsproto -> ImportError
    path = tmp_path / "gw.yaml"
    path.write_text(
        "clusters: [{name: c, instances: [{url: 'http://127.0.0.1:9'}],"
        " health: {active: false}}]\n"
        "routes: [{name: r, match: {path_prefix: /}, cluster: c}]\nwatch: false\n",
        encoding="utf-8",
    )
    assert runner.invoke(app, ["gateway", "check", str(path)]).exit_code == 0
    result = runner.invoke(app, ["gateway", "--config", str(path), "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "pip install 'flext-api[gateway]' (missing: wsproto)" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
