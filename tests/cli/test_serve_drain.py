"""`flext-api serve` drains an app made by ``create_fastapi_app`` on SIGTERM: not ready
first, then uvicorn stops, open requests bounded by ``health.drain_timeout``."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: How long a test waits for the child to start or to exit: a bound for a broken build
#: on a loaded machine, not a measure of anything.
PATIENCE = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``flext-api serve --factory tests.cli.drain_sample:make_app`` on a free port, up;
    ``DRAIN_TIMEOUT`` from the test's ``drain_timeout`` parameter (30 s by default)."""
    port = _free_port()
    drain_timeout = getattr(request, "param", "30")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flext_api.cli",
            "serve",
            "tests.cli.drain_sample:make_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "DRAIN_TIMEOUT": drain_timeout},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + PATIENCE  # a child interpreter's start-up
        while True:
            try:
                with contextlib.closing(_connect(port)) as probe:
                    probe.request("GET", "/health")
                    assert probe.getresponse().status == 200
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _ready_status(conn: http.client.HTTPConnection) -> int | None:
    """The status ``/ready`` answers on ``conn``; None when the server closed it."""
    try:
        conn.request("GET", "/ready")
        response = conn.getresponse()
        response.read()
    except (http.client.RemoteDisconnected, ConnectionError):
        return None
    return response.status


def test_sigterm_marks_the_app_draining_before_requests_finish(
    serve: tuple[subprocess.Popen[bytes], int],
) -> None:
    """After SIGTERM the app is draining while a request is in flight, a kept-alive
    connection is not told ready, and the request in flight completes."""
    proc, port = serve
    kept = _connect(port)
    slow = _connect(port)
    with contextlib.closing(kept), contextlib.closing(slow):
        _drain_while_slow(proc, kept, slow)
    proc.wait(timeout=PATIENCE)
    assert proc.returncode in (0, -signal.SIGTERM)


def _drain_while_slow(
    proc: subprocess.Popen[bytes],
    kept: http.client.HTTPConnection,
    slow: http.client.HTTPConnection,
) -> None:
    assert _ready_status(kept) == 200  # the connection is kept alive from here on
    slow.request("GET", "/slow")
    response = slow.getresponse()
    assert response.status == 200
    assert response.readline() == b"started\n"
    proc.send_signal(signal.SIGTERM)
    assert _ready_status(kept) in (503, None)
    assert response.readline() == b"draining\n"  # the app's state when SIGTERM was handled
    assert response.read() == b"done\n"  # completes, chunked terminator included


@pytest.mark.parametrize("serve", ["0.2"], indirect=True)
def test_a_request_slower_than_drain_timeout_does_not_hold_the_process(
    serve: tuple[subprocess.Popen[bytes], int],
) -> None:
    """A request that never ends is cut once ``health.drain_timeout`` has passed, and the
    process exits (plain uvicorn waited for it until SIGKILL)."""
    proc, port = serve
    with contextlib.closing(_connect(port)) as hung:
        hung.request("GET", "/hang")
        response = hung.getresponse()
        assert response.readline() == b"started\n"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            pytest.fail("the process is still waiting for the hung request")
        with pytest.raises(http.client.IncompleteRead):
            response.read()  # cut: no chunked terminator
    assert proc.returncode in (0, -signal.SIGTERM)
    assert proc.stderr is not None
    assert b"timeout graceful shutdown exceeded" in proc.stderr.read()
