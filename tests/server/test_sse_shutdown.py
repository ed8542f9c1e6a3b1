"""An open event stream does not hold a uvicorn shutdown.

uvicorn waits for open connections before the lifespan's shutdown (where the app's drain
begins), so a stream that only watched the drain kept a SIGTERMed server alive for as
long as the client stayed: a rolling deploy never finished. Real uvicorn process, real
signal; the bounds are hang guards only.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _port_of(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stderr], [], [], 1.0)
        if readable:
            line = process.stderr.readline()
            seen += line
            if match := re.search(r"running on http://127\.0\.0\.1:(\d+)", line):
                return int(match.group(1))
        if process.poll() is not None:
            break
    raise AssertionError(f"uvicorn did not start: {seen}")


def _read_until(sock: socket.socket, marker: bytes, received: bytearray) -> None:
    deadline = time.monotonic() + 30
    while marker not in received and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            return
        received += chunk


def test_sigterm_ends_an_open_stream_and_the_server_exits() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.server.sse_shutdown_app:app",
         "--host", "127.0.0.1", "--port", "0", "--log-level", "info"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = _port_of(process)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = bytearray()
            _read_until(sock, b"data: first", received)
            assert b"data: first" in received
            process.send_signal(signal.SIGTERM)
            _read_until(sock, b"0\r\n\r\n", received)  # the chunked body's clean end
            assert received.endswith(b"0\r\n\r\n"), bytes(received[-200:])
        # uvicorn re-raises the signal once its shutdown is complete (0 on older ones).
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
