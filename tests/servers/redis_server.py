"""A real ``redis-server`` process on 127.0.0.1 (random port), no persistence."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers._process import terminate

HOST = "127.0.0.1"
PING = b"*1\r\n$4\r\nPING\r\n"


def redis_server_binary() -> str:
    """Path of ``redis-server``; skips the test locally, fails it under CI, when missing."""
    path = shutil.which("redis-server")
    if path is not None:
        return path
    message = (
        "redis-server binary not found on PATH; install the Debian package "
        "(apt-get install -y redis-server) to run the Redis tests"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(PING)
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``redis-server`` child process; ``start()`` it, then use ``.url``."""

    host = HOST

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary or redis_server_binary()
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0, attempts: int = 3) -> RedisServer:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="flext-redis-")
        last_log = ""
        for _ in range(attempts):  # the chosen free port may be taken in between
            if self._try_start(_free_port(), timeout):
                return self
            last_log = self._log_path().read_text(errors="replace")[-2000:]
            self.stop()
            self._tmpdir = tempfile.TemporaryDirectory(prefix="flext-redis-")
        self.stop()
        raise RuntimeError(f"redis-server did not start; last log:\n{last_log}")

    def _log_path(self) -> Path:
        assert self._tmpdir is not None
        return Path(self._tmpdir.name) / "redis.log"

    def _try_start(self, port: int, timeout: float) -> bool:
        assert self._tmpdir is not None
        args = [
            self._binary,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--dir", self._tmpdir.name,
            "--logfile", str(self._log_path()),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.port = port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if _answers_ping(port):
                return True
            time.sleep(0.05)
        return False

    def pause(self) -> None:
        """Stop the process, keeping the port for :meth:`restart` (Redis going away)."""
        process, self._process = self._process, None
        terminate(process)

    def restart(self, timeout: float = 10.0) -> None:
        """Start again on the same port after :meth:`pause` (empty: no persistence)."""
        if not self._try_start(self.port, timeout):
            raise RuntimeError("redis-server did not restart")

    def stop(self) -> None:
        process, self._process = self._process, None
        terminate(process)
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            tmpdir.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
