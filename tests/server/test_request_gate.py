"""The request gate: probes, default rate limit, body size and JSON type in one pass."""

from __future__ import annotations

import io

from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from flext_api import ServerConfig
from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import create_fastapi_app, make_json_logger
from flext_api.server.middleware import (
    BodyLimitMiddleware,
    JsonContentTypeMiddleware,
    OperationalRoutesMiddleware,
    RateLimitMiddleware,
    RequestGateMiddleware,
)
from tests.server.conftest import Build
from tests.server.helpers import problem, serve


class Item(BaseModel):
    """A JSON body."""

    name: str


def _scope(headers: list[tuple[bytes, bytes]], http_version: str = "1.1") -> Scope:
    return {
        "type": "http",
        "http_version": http_version,
        "method": "POST",
        "path": "/x",
        "headers": headers,
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def _receive_seen_by_app(gate_app: RequestGateMiddleware, scope: Scope) -> Receive:
    seen: list[Receive] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    gate_app.app = app
    await gate_app(scope, _receive, _send)
    return seen[0]


def test_factory_stacks_one_gate_and_no_single_check_layers() -> None:
    """The four cheap checks are one layer of the default stack."""
    config = ServerConfig(rate_limit=ServerRateLimitConfig(default_limit="5/minute"))
    app = create_fastapi_app(config, logger=make_json_logger(io.StringIO()))
    classes: list[object] = [m.cls for m in app.user_middleware]
    assert classes.count(RequestGateMiddleware) == 1
    for single in (
        OperationalRoutesMiddleware,
        RateLimitMiddleware,
        BodyLimitMiddleware,
        JsonContentTypeMiddleware,
    ):
        assert single not in classes


async def test_http1_request_without_body_keeps_its_receive() -> None:
    """HTTP/1.1 without Content-Length or Transfer-Encoding has no body: no wrapper."""
    gate = RequestGateMiddleware(_send, max_body_size=10, enforce_json=True)  # type: ignore[arg-type]
    assert await _receive_seen_by_app(gate, _scope([])) is _receive


async def test_http2_request_without_length_is_counted() -> None:
    """HTTP/2 can stream a body without a length, so its bytes are counted."""
    gate = RequestGateMiddleware(_send, max_body_size=10)  # type: ignore[arg-type]
    assert await _receive_seen_by_app(gate, _scope([], http_version="2")) is not _receive


async def test_json_body_to_limited_app_is_counted_but_not_type_checked() -> None:
    """A JSON body is still counted against the size limit."""
    gate = RequestGateMiddleware(_send, max_body_size=10, enforce_json=True)  # type: ignore[arg-type]
    headers = [(b"content-type", b"application/json"), (b"content-length", b"5")]
    assert await _receive_seen_by_app(gate, _scope(headers)) is not _receive


async def test_gate_without_checks_passes_everything() -> None:
    """With every concern off, the request reaches the app untouched."""
    gate = RequestGateMiddleware(_send)  # type: ignore[arg-type]
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    assert await _receive_seen_by_app(gate, _scope(headers)) is _receive


async def test_rate_limit_is_checked_before_the_body_size(build: Build) -> None:
    """A refused client gets 429 even for an oversized body (the stacked order)."""
    config = ServerConfig(
        max_body_size=10, rate_limit=ServerRateLimitConfig(default_limit="1/minute")
    )
    app = build(config)

    @app.post("/items")
    async def items(item: Item) -> Item:
        return item

    async with serve(app) as client:
        first = await client.post("/items", content=b"x" * 100)
        second = await client.post("/items", content=b"x" * 100)
    assert (first.status_code, second.status_code) == (413, 429)
    assert problem(second)["status"] == 429


async def test_probe_answered_before_the_rate_limit(build: Build) -> None:
    """Probes are served by the gate itself and never limited."""
    app = build(ServerConfig(rate_limit=ServerRateLimitConfig(default_limit="1/minute")))
    async with serve(app) as client:
        statuses = [(await client.get("/health")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


async def test_non_json_body_to_json_route_with_small_limit(build: Build) -> None:
    """Type and size checks share one receive: a small text body to a JSON route is 415."""
    app = build(ServerConfig(max_body_size=1000))

    @app.post("/items")
    async def items(item: Item) -> Item:
        return item

    async with serve(app) as client:
        response = await client.post(
            "/items", content=b"name=x", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 415
