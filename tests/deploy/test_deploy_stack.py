"""deploy/gateway.yaml in front of examples/composition_service.py, on real sockets.

What deploy/compose.yaml runs, without Docker: the services' app and the gateway from
the deploy config, its instances pointed at the local service.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from flext_api.gateway import create_gateway, parse_config
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Counting:
    """The app, counting the HTTP requests that reach it by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def _live(stack: ExitStack, app: Any) -> LiveServer:
    server = LiveServer(app)
    stack.callback(server.stop)
    return server.start()


def test_cached_products_route_is_answered_by_the_gateway() -> None:
    """The products route (cache: true) is stored: a repeat GET never reaches the service."""
    example = importlib.reload(importlib.import_module("examples.composition_service"))
    service = Counting(example.app)
    raw = yaml.safe_load((_DEPLOY / "gateway.yaml").read_text())
    with ExitStack() as stack:
        upstream = _live(stack, service)
        for cluster in raw["clusters"]:
            cluster["instances"] = [{"url": upstream.url}]
        raw["admin"] = {"host": "127.0.0.1", "port": 0}
        config = parse_config(yaml.safe_dump(raw)).unwrap()
        gateway = _live(stack, create_gateway(config))
        with httpx2.Client(base_url=gateway.url, timeout=30) as client:
            replies = [client.get("/products") for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert replies[1].json() == {"1": "keyboard", "2": "mouse"}
    assert service.paths.count("/products") == 1
