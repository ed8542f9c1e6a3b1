"""Fixtures: recording upstreams and a real gateway (uvicorn) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from flext_api.gateway import GatewayConfig
from flext_api.gateway._admin import AdminApp
from flext_api.gateway._app import Gateway
from flext_api.gateway._reload import Reloader
from flext_api.gateway._serve import GatewayRunner
from tests.integration.gateway.upstream import Upstream

HOST = "127.0.0.1"


def _bound() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    return sock


class LiveGateway:
    """A :class:`GatewayRunner` (gateway + admin API) served in a thread on 127.0.0.1."""

    def __init__(self, config: GatewayConfig, path: Path | None) -> None:
        self._sock, self._admin_sock = _bound(), _bound()
        self.port: int = self._sock.getsockname()[1]
        self.admin_port: int = self._admin_sock.getsockname()[1]
        self.runner = GatewayRunner(
            config,
            config_path=path,
            sockets=[self._sock],
            admin_sockets=[self._admin_sock],
        )
        self.gateway: Gateway = self.runner.gateway
        self.reloader: Reloader | None = self.runner.reloader
        self.admin: AdminApp = self.runner.admin
        self.server = self.runner.server
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.runner.run()

        asyncio.run(main())

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin API's base URL."""
        return f"http://{HOST}:{self.admin_port}"

    def call(self, coro: Any) -> Any:
        """Run ``coro`` on the gateway's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> LiveGateway:
        """Start serving; return once uvicorn is up."""
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server thread and close the sockets."""
        self.runner.stop()
        self._thread.join(15)
        self._sock.close()
        self._admin_sock.close()


class GatewayProcess:
    """``flext-api gateway --config FILE --port N`` as a child process."""

    def __init__(self, config: dict[str, object], tmp_path: Path) -> None:
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = tmp_path / "gateway.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flext_api.cli",
                    "gateway",
                    "--config",
                    str(path),
                    "--port",
                    str(self.port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90  # a loaded machine starts Python slowly
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway process did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    """Two recording upstream instances, ``a`` and ``b``."""
    a, b = Upstream("a").start(), Upstream("b").start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


async def refused_handshake(url: str, **options: Any) -> tuple[int, str | None]:
    """A WebSocket handshake that must be refused: its status and ``X-Gateway-Reason``."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(url, **options)
    headers = info.value.headers
    return info.value.status, headers.get("X-Gateway-Reason") if headers is not None else None


def basic_config(*urls: str, **route: Any) -> dict[str, Any]:
    """A one-cluster config (``svc``) with a catch-all route; ``route`` overrides keys."""
    return {
        "clusters": [
            {
                "name": "svc",
                "instances": [{"url": url} for url in urls],
                "retry": {"budget_min_retries": 100},
            }
        ],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc", **route}],
        "admin": {"token": "t0ken"},
        "watch": False,
    }


@pytest.fixture
def run_gateway(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], LiveGateway]]:
    """``run_gateway(config_dict)`` serves a gateway for the rest of the test.

    The config is also written to ``tmp_path/gateway.yaml`` (the reloader's file).
    """
    with ExitStack() as stack:

        def start(data: dict[str, Any]) -> LiveGateway:
            path = tmp_path / "gateway.yaml"
            path.write_text(yaml.safe_dump(data), encoding="utf-8")
            live = LiveGateway(GatewayConfig.model_validate(data), path)
            stack.callback(live.stop)
            return live.start()

        yield start
