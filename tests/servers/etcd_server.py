"""A real single-node ``etcd`` (Debian ``etcd-server``) on 127.0.0.1, random ports.

It can be stopped and started again on the same ports and data directory (etcd
going away mid-run and coming back).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers._process import terminate

HOST = "127.0.0.1"


def etcd_binary() -> str:
    """Path of ``etcd``; skips the test locally, fails it under CI, when missing."""
    path = shutil.which("etcd")
    if path is not None:
        return path
    message = "etcd not found on PATH; install the Debian package etcd-server (make does it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class EtcdServer:
    """``etcd`` child process; ``start()`` it, then use ``.url``."""

    def __init__(self) -> None:
        self._binary = etcd_binary()
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.client_port = 0
        self.peer_port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    def start(self, timeout: float = 20.0, attempts: int = 3) -> EtcdServer:
        """Start on fresh free ports (retrying when a port was taken meanwhile)."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="flext-etcd-")
        for _ in range(attempts):
            self.client_port, self.peer_port = _free_port(), _free_port()
            if self._launch(timeout):
                return self
            self._kill()
        self.stop()
        raise RuntimeError("etcd did not start")

    def restart(self, timeout: float = 20.0) -> None:
        """Start again on the same ports and data after :meth:`pause`."""
        if not self._launch(timeout):
            raise RuntimeError("etcd did not restart")

    def pause(self) -> None:
        """Stop the process, keeping ports and data for :meth:`restart`."""
        self._kill()

    def _launch(self, timeout: float) -> bool:
        assert self._tmpdir is not None
        client = f"http://{HOST}:{self.client_port}"
        peer = f"http://{HOST}:{self.peer_port}"
        args = [
            self._binary,
            "--name", "t",
            "--data-dir", str(Path(self._tmpdir.name) / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}",
            "--log-level", "warn",
            "--logger", "zap",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=0.5) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _kill(self) -> None:
        process, self._process = self._process, None
        terminate(process)

    def stop(self) -> None:
        self._kill()
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            tmpdir.cleanup()

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
