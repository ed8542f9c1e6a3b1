"""Edges of flext_api.middleware: pass-through scopes, state lookups, counters, slow logs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from flext_api import create_fastapi_app
from flext_api.middleware import (
    FlextApiMiddleware,
    FlextRequest,
    FlextResponse,
    PerformanceMonitoringMiddleware,
    SecurityMiddleware,
)
from flext_api.middleware._security import MinuteCounter
from tests.guides.conftest import Events
from tests.server.helpers import serve


async def test_non_http_scopes_pass_through() -> None:
    """A websocket or lifespan scope reaches the app without the hooks."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    bound = FlextApiMiddleware()(app)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    await bound({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
    assert repr(FlextApiMiddleware()) == "<FlextApiMiddleware>"


def test_request_reads_missing_attributes_as_errors() -> None:
    """An attribute neither on the request nor in its state is an AttributeError."""
    request = FlextRequest({"type": "http", "path": "/p", "headers": []}, _no_receive)
    request.tag = "x"
    assert (request.tag, request.state.tag, request.path) == ("x", "x", "/p")
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = request.missing
    with pytest.raises(AttributeError):
        _ = request._private


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def test_response_repr() -> None:
    """The response shows its status and size."""
    from starlette.datastructures import MutableHeaders

    assert repr(FlextResponse(201, MutableHeaders(), b"ab")) == "<FlextResponse [201] 2 bytes>"


def test_minute_counter_forgets_after_a_minute() -> None:
    """Hits older than 60 s leave the count."""
    now = [0.0]
    counter = MinuteCounter(clock=lambda: now[0])
    assert counter.get_count("ip", "GET /") == 1
    assert counter.get_count("ip", "GET /") == 2
    now[0] = 61.0
    assert counter.get_count("ip", "GET /") == 1


def test_unreadable_content_length_counts_as_zero() -> None:
    """A Content-Length that is not a number is a size of 0."""
    request = FlextRequest(
        {"type": "http", "path": "/", "headers": [(b"content-length", b"many")]}, _no_receive
    )
    assert SecurityMiddleware().get_request_size(request) == 0


def _app(*middlewares: FlextApiMiddleware) -> FastAPI:
    app = create_fastapi_app()
    for middleware in middlewares:
        app.add_middleware(middleware)
    return app


async def test_base_hooks_pass_requests_through() -> None:
    """A middleware defining no hook changes nothing."""
    async with serve(_app(FlextApiMiddleware())) as client:
        assert (await client.get("/health")).status_code == 200


async def test_slow_requests_are_logged(events: Events) -> None:
    """Past slow_request_ms the performance middleware logs the request."""

    class Eager(PerformanceMonitoringMiddleware):
        slow_request_ms = -1.0

    async with serve(_app(Eager())) as client:
        await client.get("/health")
    (slow,) = events.named("Slow request detected")
    assert slow["path"] == "/health"


async def test_security_base_accepts_a_json_post() -> None:
    """A JSON body within the limits passes every base check."""

    class Api(SecurityMiddleware):
        pass

    app = _app(Api())

    @app.post("/orders")
    async def create() -> dict[str, Any]:
        return {"ok": True}

    async with serve(app) as client:
        assert (await client.post("/orders", json={"a": 1})).status_code == 200
