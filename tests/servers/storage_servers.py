"""Real object-store servers on 127.0.0.1 for the storage tests: moto (S3), Azurite
(Azure Blob) and gcp-storage-emulator (GCS), each a child process on a free port.

Azurite always runs with ``--disableTelemetry`` (it calls out otherwise); none of the
three is given a non-loopback address.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _missing(what: str, hint: str) -> None:
    message = f"{what} not found; {hint}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _venv_script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        _missing(name, "install the dev extra: pip install -e '.[dev]'")
    return str(found)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except (OSError, urllib.error.URLError):
        return False


class ServerProcess:
    """A child server: ``start()`` waits until ``ready(port)``; ``stop()`` ends it."""

    def __init__(self, name: str, command: Callable[[int, str], list[str]], ready: str) -> None:
        self.name = name
        self._command = command
        self._ready = ready  # "tcp" or an HTTP path
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix=f"flext-{name}-")
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _is_ready(self) -> bool:
        if self._ready == "tcp":
            return _tcp_open(self.port)
        return _http_ok(self.endpoint + self._ready)

    def start(self, port: int | None = None, timeout: float = 30.0) -> ServerProcess:
        for _ in range(3):  # a free port may be taken before the server binds it
            self.port = port or free_port()
            log = (Path(self._tmp.name) / "server.log").open("ab")
            self._process = subprocess.Popen(
                self._command(self.port, self._tmp.name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._tmp.name,
            )
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._process.poll() is None:
                if self._is_ready():
                    return self
                time.sleep(0.05)
            self.kill()
            if port is not None:
                time.sleep(0.5)
        tail = (Path(self._tmp.name) / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not start; log:\n{tail}")

    def kill(self) -> None:
        """Stop the process at once (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(10)

    def stop(self) -> None:
        self.kill()

    def close(self) -> None:
        self.kill()
        self._tmp.cleanup()


def moto_server() -> ServerProcess:
    binary = _venv_script("moto_server")
    return ServerProcess("moto", lambda port, _: [binary, "-H", HOST, "-p", str(port)], "/")


def azurite_server() -> ServerProcess:
    binary = REPO / ".npm" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        _missing("azurite-blob", "run `make azurite` (npm install azurite@3.35.0 into .npm/)")

    def command(port: int, tmp: str) -> list[str]:
        return [
            str(binary), "--blobHost", HOST, "--blobPort", str(port), "--location", tmp,
            "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry",
        ]  # fmt: skip

    return ServerProcess("azurite", command, "tcp")


def gcs_emulator(bucket: str) -> ServerProcess:
    binary = _venv_script("gcp-storage-emulator")

    def command(port: int, _: str) -> list[str]:
        return [
            binary, "start", "--host", HOST, "--port", str(port), "--in-memory",
            "--default-bucket", bucket,
        ]  # fmt: skip

    return ServerProcess("gcs", command, "/")


def create_s3_bucket(endpoint: str, bucket: str) -> None:
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass


def create_azure_container(endpoint: str, container: str) -> None:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient(
        account_url=f"{endpoint}/{AZURITE_ACCOUNT}",
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    )
    with client:
        client.create_container(container)
