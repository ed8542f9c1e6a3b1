"""Edges of flext_api.middleware: pass-through scopes, state lookups, counters, slow logs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from flext_api import FlextResult, create_fastapi_app
from flext_api.middleware import (
    FlextApiMiddleware,
    FlextRequest,
    FlextResponse,
    PerformanceMonitoringMiddleware,
    SecurityMiddleware,
)
from flext_api.middleware._security import MinuteCounter
from flext_api.server import make_json_logger
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

    # Not /health: the factory answers its probes before added middleware runs.
    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    for middleware in middlewares:
        app.add_middleware(middleware)
    return app


async def test_base_hooks_pass_requests_through() -> None:
    """A middleware defining no hook changes nothing."""
    async with serve(_app(FlextApiMiddleware())) as client:
        assert (await client.get("/ping")).status_code == 200


async def test_a_head_answer_keeps_its_content_length_through_a_response_hook(
    tmp_path: Path,
) -> None:
    """A HEAD answer's Content-Length is the GET's, not the 0 of the empty body the hook
    sees (a file answers HEAD with no body), and no body is sent."""
    from fastapi.responses import FileResponse

    (tmp_path / "doc.txt").write_bytes(b"twelve bytes")
    app = _app(PerformanceMonitoringMiddleware())

    @app.api_route("/doc", methods=["GET", "HEAD"])
    async def doc() -> FileResponse:
        return FileResponse(tmp_path / "doc.txt")

    async with serve(app) as client:
        get = await client.get("/doc")
        head = await client.head("/doc")
    assert get.headers["content-length"] == "12" and get.content == b"twelve bytes"
    assert head.status_code == 200 and head.headers["content-length"] == "12"
    assert head.content == b"" and "x-response-time" in head.headers


async def test_slow_requests_are_logged(events: Events) -> None:
    """Past slow_request_ms the performance middleware logs the request."""

    class Eager(PerformanceMonitoringMiddleware):
        slow_request_ms = -1.0

    async with serve(_app(Eager())) as client:
        await client.get("/ping")
    (slow,) = events.named("Slow request detected")
    assert slow["path"] == "/ping"


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


async def test_performance_middleware_uses_the_factory_request_id() -> None:
    """Under the factory the middleware's ID is the validated one: an unchecked inbound
    value is never echoed, and header, problem body, access log and hooks agree."""
    stream = io.StringIO()
    app = create_fastapi_app(logger=make_json_logger(stream))
    seen: list[str] = []

    class Watching(PerformanceMonitoringMiddleware):
        async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
            result = await super().process_request(request)
            seen.append(request.request_id)
            return result

    app.add_middleware(Watching())
    forged = '<script>x</script> "q"'
    async with serve(app) as client:
        response = await client.get("/missing", headers={"X-Request-ID": forged})
    (sent,) = response.headers.get_list("x-request-id")
    (timing,) = response.headers.get_list("x-response-time")
    access = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sent != forged
    assert timing.endswith("ms")
    assert response.json()["request_id"] == sent
    assert [r["request_id"] for r in access if r.get("event") == "request"] == [sent]
    assert seen == [sent]


@pytest.mark.parametrize(
    ("inbound", "kept"), [("req-1", True), ("<b>x</b>", False), ("a" * 129, False)]
)
async def test_performance_middleware_alone_validates_inbound_ids(inbound: str, kept: bool) -> None:
    """Without the factory an inbound X-Request-ID is kept only if it passes the factory's rule."""
    app = FastAPI()
    app.add_middleware(PerformanceMonitoringMiddleware())

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    async with serve(app, lifespan=False) as client:
        response = await client.get("/ping", headers={"X-Request-ID": inbound})
    (sent,) = response.headers.get_list("x-request-id")
    assert (sent == inbound) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", sent)


def test_minute_counter_drops_idle_keys() -> None:
    """Keys of unique paths (ids) idle for a minute are forgotten: memory stays bounded."""
    now = [0.0]
    counter = MinuteCounter(clock=lambda: now[0])
    for i in range(1000):
        counter.get_count("ip", f"GET /orders/{i}")
    assert len(counter) == 1000
    now[0] = 61.0
    assert counter.get_count("ip", "GET /orders/0") == 1
    assert len(counter) == 1


def test_minute_counter_drops_only_the_keys_idle_for_a_minute() -> None:
    """A key hit within the minute stays, with its count, behind the idle ones dropped."""
    now = [0.0]
    counter = MinuteCounter(clock=lambda: now[0])
    counter.get_count("a", "GET /")
    counter.get_count("b", "GET /")
    now[0] = 30.0
    counter.get_count("a", "GET /")  # a is now the most recently hit
    now[0] = 65.0
    assert counter.get_count("c", "GET /") == 1
    assert len(counter) == 2  # b (idle since 0) went; a (hit at 30) stays
    assert counter.get_count("a", "GET /") == 2


def test_minute_counter_caps_its_keys_and_keeps_the_busy_one() -> None:
    """Past max_keys, the least recently used key goes; a busy client keeps its count."""
    counter = MinuteCounter(clock=lambda: 0.0, max_keys=10)
    for i in range(100):
        counter.get_count("attacker", f"GET /x/{i}")
        busy = counter.get_count("busy", "GET /")
    assert len(counter) == 10
    assert busy == 100
    with pytest.raises(ValueError, match="max_keys"):
        MinuteCounter(max_keys=0)


async def test_security_refuses_a_chunked_body_of_another_content_type() -> None:
    """A body without Content-Length (chunked) is checked for its content type too."""

    class Api(SecurityMiddleware):
        pass

    app = _app(Api())

    @app.post("/orders")
    async def create() -> dict[str, Any]:
        return {"ok": True}

    async def chunks() -> Any:
        yield b"<xml/>"

    async with serve(app) as client:
        response = await client.post(
            "/orders", content=chunks(), headers={"Content-Type": "text/xml"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 415
        json_chunks = await client.post(
            "/orders", content=_json_chunks(), headers={"Content-Type": "application/json"}
        )
        assert json_chunks.status_code == 200


async def _json_chunks() -> Any:
    yield b'{"a": 1}'
