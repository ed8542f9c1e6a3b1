"""Fixtures: recording upstreams and a real gateway (uvicorn, h11) on 127.0.0.1."""

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

import pytest
import yaml

from flext_api.gateway import GatewayConfig, create_gateway
from flext_api.gateway._admin import AdminApp
from flext_api.gateway._app import Gateway
from flext_api.gateway._reload import Reloader
from flext_api.gateway._serve import GatewayServer, uvicorn_config
from tests.integration.gateway.upstream import Upstream

HOST = "127.0.0.1"


class LiveGateway:
    """A gateway served by :class:`GatewayServer` in a thread; admin app alongside."""

    def __init__(self, config: GatewayConfig, path: Path | None) -> None:
        self.gateway: Gateway = create_gateway(config)
        self.reloader = Reloader(self.gateway, path) if path is not None else None
        self.admin = AdminApp(self.gateway, self.reloader)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        self.server = GatewayServer(
            uvicorn_config(
                self.gateway, HOST, self.port, drain_timeout=5, listener=config.listeners[0]
            ),
            self.gateway,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server._serve(sockets=[self._sock])

        asyncio.run(main())

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def call(self, coro: Any) -> Any:
        """Run ``coro`` on the gateway's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> LiveGateway:
        """Start serving; return once uvicorn is up."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server thread and close the socket."""
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()


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
        deadline = time.monotonic() + 30
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
