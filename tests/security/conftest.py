"""Fixtures of the security suite: the app under attack, served in process or by a real
uvicorn on 127.0.0.1 (random port, in a thread; ``live``) for the cases that need real
sockets - peer addresses, chunked bodies, raw bytes on the wire - and by two uvicorn
processes sharing Redis for the multi-worker rate limit (``worker_pair``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.live import HOST, free_port, live, raw_http, response_headers, wait_for_records

__all__ = ["HOST", "live", "raw_http", "response_headers", "wait_for_records", "worker_pair"]

ROOT = Path(__file__).resolve().parents[2]
WORKER_APP = "tests.security.apps:redis_limited_app"


@pytest.fixture
def worker_pair(redis_server: Any) -> Iterator[list[str]]:
    """Two uvicorn worker processes of one service, sharing a Redis rate-limit store."""
    env = {**os.environ, "FLEXT_TEST_REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "--factory", WORKER_APP,
                       "--host", HOST, "--port", str(port), "--no-proxy-headers",
                       "--log-level", "warning"]  # fmt: skip
            procs.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            urls.append(f"http://{HOST}:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_http(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    port = int(url.rsplit(":", 1)[1])
    # 90 s: a worker's Python start-up on a loaded 2-core machine has passed 20 s.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        try:
            raw = raw_http(
                port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=1
            )
            if raw.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("worker did not become ready")
