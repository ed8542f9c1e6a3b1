"""`flext-api serve MODULE:APP`: loading the app, errors, and a real uvicorn subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from flext_api.cli import _serve_cmd
from flext_api.cli._app import app
from flext_api.cli._serve_cmd import SERVER_HINT, load_app
from tests.cli import asgi_sample

ROOT = Path(__file__).resolve().parents[2]


def test_load_app_and_factory() -> None:
    """MODULE:APP imports the object; --factory calls it."""
    assert load_app("tests.cli.asgi_sample:app") is asgi_sample.app
    assert load_app("tests.cli.asgi_sample:make_app", factory=True) is asgi_sample.app


@pytest.mark.parametrize(
    ("target", "factory", "message"),
    [
        ("tests.cli.asgi_sample", False, "is not MODULE:APP"),
        (":app", False, "is not MODULE:APP"),
        ("no_such_module_xyz:app", False, "cannot import 'no_such_module_xyz'"),
        ("tests.cli.asgi_sample:nope", False, "has no attribute 'nope'"),
        ("tests.cli.asgi_sample:NOT_AN_APP", False, "is not an ASGI app"),
        ("tests.cli.asgi_sample:NOT_AN_APP", True, "is not callable (--factory)"),
    ],
)
def test_load_app_errors(target: str, factory: bool, message: str) -> None:
    """A wrong target is one clear usage error."""
    with pytest.raises(typer.BadParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_app(target, factory=factory)


def test_serve_runs_uvicorn_with_the_options(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve hands the loaded app, host, port and log level to uvicorn.run, on the
    protocol with a request-head timeout and bound."""
    calls: list[tuple[Any, dict[str, Any]]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: calls.append((asgi, kw)))
    result = runner.invoke(
        app,
        [
            "serve",
            "tests.cli.asgi_sample:app",
            "--host",
            "127.0.0.2",
            "--port",
            "9",
            "--log-level",
            "warning",
            "--header-timeout",
            "2.5",
            "--max-header-bytes",
            "4096",
            "--no-access-log",
        ],
    )
    assert result.exit_code == 0
    [(asgi, options)] = calls
    protocol = options.pop("http")
    assert asgi is asgi_sample.app
    assert options == {
        "host": "127.0.0.2",
        "port": 9,
        "log_level": "warning",
        "access_log": False,
        "h11_max_incomplete_event_size": 4096,
    }
    assert protocol.header_timeout == 2.5
    assert protocol.max_head_bytes == 4096


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-level", "bogus"], "'bogus' is not one of critical"),
        (["--factory"], "cannot be called without arguments (--factory)"),
    ],
)
def test_serve_bad_options_are_usage_errors(
    runner: CliRunner, args: list[str], message: str
) -> None:
    """A bad log level or --factory on an app (not a factory) is a usage error (exit 2),
    not a traceback."""
    result = runner.invoke(app, ["serve", "tests.cli.asgi_sample:app", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_serve_bad_target_exits_2(runner: CliRunner) -> None:
    """A target that does not load is a usage error."""
    result = runner.invoke(app, ["serve", "nope"])
    assert result.exit_code == 2
    assert "is not MODULE:APP" in result.stderr


def test_serve_without_uvicorn_prints_the_server_extra(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without uvicorn, serve says which extra to install and exits 1."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = runner.invoke(app, ["serve", "tests.cli.asgi_sample:app"])
    assert result.exit_code == 1
    assert result.stderr == SERVER_HINT + "\n"
    assert _serve_cmd.SERVER_HINT.startswith("flext-api serve needs the 'server' extra")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_serve_as_a_real_process() -> None:
    """`python -m flext_api.cli serve` answers HTTP on the chosen port until Ctrl-C; a
    client that sends half a request head gets a 408 once the head timeout passes (plain
    uvicorn would hold the connection for ever)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flext_api.cli",
            "serve",
            "tests.cli.asgi_sample:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--header-timeout",
            "0.5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 90  # a child interpreter's start-up on a loaded machine
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert body == b'{"served": true}'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")
        # A head over --max-header-bytes (32 KiB) that arrives in one piece: 431.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 ")
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down cleanly
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
