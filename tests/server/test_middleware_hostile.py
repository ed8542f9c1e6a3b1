"""flext_api.middleware against hostile hooks, bodies, files, streams and settings."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.types import Message
from structlog.testing import capture_logs

from flext_api import FlextResult
from flext_api._errors import ConfigError
from flext_api.middleware import (
    FlextApiMiddleware,
    FlextRequest,
    FlextResponse,
    PerformanceMonitoringMiddleware,
    SecurityMiddleware,
)
from flext_api.server import EventStreamResponse
from tests.server.conftest import Build
from tests.server.helpers import problem, serve
from tests.server.live import HOST, LiveServer, raw_http, response_headers

# A generous bound on a request that must not hang: the old code never answered at all.
_HANG_GUARD = 30.0


class _Mangle(FlextApiMiddleware):
    """Leaves the response as the request's X-Mangle header says."""

    async def process_response(
        self, request: FlextRequest, response: FlextResponse
    ) -> FlextResult[dict[str, Any]]:
        how = request.headers.get("x-mangle", "")
        if how == "crlf-value":
            response.headers["X-Echo"] = "a\r\nSet-Cookie: evil=1"
        elif how == "nul-value":
            response.headers["X-Echo"] = "a\x00b"
        elif how == "bad-name":
            response.headers.raw.append((b"x echo", b"v"))
        elif how == "status-1000":
            response.status_code = 1000
        elif how == "str-content":
            response.content = '{"a": "\u00e9"}'  # type: ignore[assignment]
        elif how == "to-204":
            response.status_code = 204
        elif how == "to-304":
            response.status_code = 304
        return FlextResult.ok({})


def _orders(app: FastAPI) -> FastAPI:
    @app.get("/orders")
    async def orders() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize(
    "how", ["crlf-value", "nul-value", "bad-name", "status-1000", "str-content"]
)
def test_an_unsendable_response_left_by_a_hook_is_a_problem_500(
    build: Build, live: Callable[[FastAPI], LiveServer], how: str
) -> None:
    """A hook leaving a header value with CR/LF or NUL, a bad header name, a status out
    of range or text content gets a problem+json 500 over a real socket, not a dropped
    connection or a truncated 200 - and the injected header never goes out."""
    app = _orders(build())
    app.add_middleware(_Mangle())
    server = live(app)
    raw = raw_http(
        server.port,
        f"GET /orders HTTP/1.1\r\nHost: x\r\nX-Mangle: {how}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert raw, "the server dropped the connection without an answer"
    status, headers = response_headers(raw)
    found = dict(headers)
    assert (status, found["content-type"]) == (500, "application/problem+json")
    assert "set-cookie" not in found and "x-echo" not in found
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == 500 and body["request_id"] == found["x-request-id"]


async def test_an_unsendable_response_is_logged_with_the_reason(build: Build) -> None:
    """The refused response is logged as the hook's failure, naming what was wrong."""
    app = _orders(build())
    app.add_middleware(_Mangle())
    with capture_logs() as logs:
        async with serve(app) as client:
            response = await client.get("/orders", headers={"X-Mangle": "crlf-value"})
    assert problem(response)["status"] == 500
    (failed,) = [e for e in logs if e["event"] == "middleware process_response failed"]
    assert failed["middleware"] == "_Mangle" and "x-echo" in failed["error"]


@pytest.mark.parametrize("how", ["to-204", "to-304"])
async def test_a_hook_turning_an_answer_into_204_or_304_sends_no_body(
    build: Build, how: str
) -> None:
    """A 204 or 304 the hook makes of a 200 carries no content (httptools would send the
    200's bytes after it, read by the client as the start of the next answer); a 204
    has no Content-Length."""
    app = _orders(build())
    app.add_middleware(_Mangle())
    async with serve(app) as client:
        response = await client.get("/orders", headers={"X-Mangle": how})
    assert response.status_code == int(how[-3:])
    assert response.content == b""
    if how == "to-204":
        assert "content-length" not in response.headers


async def test_a_204_from_the_app_passes_a_response_hook_unchanged(build: Build) -> None:
    """An app's own 204 goes through a response hook with no body and no length."""
    app = build()

    @app.delete("/orders/1", status_code=204)
    async def delete() -> Response:
        return Response(status_code=204)

    app.add_middleware(PerformanceMonitoringMiddleware())
    async with serve(app) as client:
        response = await client.delete("/orders/1")
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers


class _Signed(FlextApiMiddleware):
    """Reads the JSON body in process_request, as a signature check would."""

    async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        document = await request.json()
        request.signature = document.get("sig")
        return FlextResult.ok({})


async def test_a_body_read_by_process_request_still_reaches_the_app(build: Build) -> None:
    """A hook reading the body (``await request.json()``) does not leave the route
    waiting for a body that already went by: the route reads the same bytes."""
    app = build()

    @app.post("/orders")
    async def create(request: Request) -> dict[str, Any]:
        return {"body": await request.json(), "sig": request.state.signature}

    app.add_middleware(_Signed())
    async with serve(app) as client:
        with anyio.fail_after(_HANG_GUARD):
            response = await client.post("/orders", json={"sig": "s1", "n": 1})
    assert response.status_code == 200
    assert response.json() == {"body": {"sig": "s1", "n": 1}, "sig": "s1"}


async def test_a_body_read_in_part_by_a_hook_reaches_the_app_whole(build: Build) -> None:
    """A hook reading only the first chunk of a streamed body leaves the app the whole
    body, in order."""

    class FirstChunk(FlextApiMiddleware):
        async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
            async for chunk in request.stream():
                request.first = chunk
                break
            return FlextResult.ok({})

    app = build()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        return {"body": (await request.body()).decode(), "first": request.state.first.decode()}

    app.add_middleware(FirstChunk())

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"a":', b" 1", b"}"):
            yield part

    async with serve(app) as client:
        with anyio.fail_after(_HANG_GUARD):
            response = await client.post(
                "/upload", content=chunks(), headers={"Content-Type": "application/json"}
            )
    assert response.json() == {"body": '{"a": 1}', "first": '{"a":'}


async def test_a_file_sent_by_path_reaches_a_response_hook(tmp_path: Path) -> None:
    """Under a server with the ``http.response.pathsend`` extension (granian), a
    FileResponse hands over a path, not bytes: the hook sees the file and the client
    gets it, not an empty body with Content-Length 0."""
    (tmp_path / "doc.txt").write_bytes(b"twelve bytes")
    app = FastAPI()

    @app.get("/doc")
    async def doc() -> FileResponse:
        return FileResponse(tmp_path / "doc.txt")

    seen: list[bytes] = []

    class Watching(PerformanceMonitoringMiddleware):
        async def process_response(
            self, request: FlextRequest, response: FlextResponse
        ) -> FlextResult[dict[str, Any]]:
            seen.append(response.content)
            return await super().process_response(request, response)

    app.add_middleware(Watching())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/doc",
        "raw_path": b"/doc",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "extensions": {"http.response.pathsend": {}},  # what granian announces
        "state": {},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, *bodies = sent
    headers = dict(start["headers"])
    assert seen == [b"twelve bytes"]
    assert headers[b"content-length"] == b"12" and b"x-response-time" in headers
    assert b"".join(m.get("body", b"") for m in bodies) == b"twelve bytes"


def _first_event(port: int, path: str) -> tuple[bytes, bytes]:
    """Open an event stream on a raw socket; the head and the first event's bytes."""
    with socket.create_connection((HOST, port), timeout=_HANG_GUARD) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"data:" not in received.partition(b"\r\n\r\n")[2]:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the stream before its first event"
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def test_an_event_stream_is_not_buffered_by_a_response_hook(
    build: Build, live: Callable[[FastAPI], LiveServer]
) -> None:
    """An endless event stream through a process_response middleware reaches the client
    event by event (a buffered stream is never sent at all), with the hook's headers."""
    app = build()
    forever = asyncio.Event()

    async def source() -> AsyncIterator[dict[str, Any]]:
        yield {"data": "first"}
        await forever.wait()  # an event source with no end

    @app.get("/events")
    async def events() -> EventStreamResponse:
        return EventStreamResponse(source())

    class Tagging(FlextApiMiddleware):
        async def process_response(
            self, request: FlextRequest, response: FlextResponse
        ) -> FlextResult[dict[str, Any]]:
            response.headers["X-Tag"] = f"{response.status_code}:{len(response.content)}"
            return FlextResult.ok({})

    app.add_middleware(Tagging())
    server = live(app)
    head, body = _first_event(server.port, "/events")
    status, headers = response_headers(head + b"\r\n\r\n")
    assert status == 200 and ("x-tag", "200:0") in headers
    assert b"data: first" in body


async def test_an_event_stream_refused_by_its_hook_is_a_problem_500(build: Build) -> None:
    """A hook failing on an event stream's start answers a 500, and no event follows."""
    app = build()

    async def source() -> AsyncIterator[dict[str, Any]]:
        yield {"data": "never sent"}

    @app.get("/events")
    async def events() -> EventStreamResponse:
        return EventStreamResponse(source())

    class Refusing(FlextApiMiddleware):
        async def process_response(
            self, request: FlextRequest, response: FlextResponse
        ) -> FlextResult[dict[str, Any]]:
            return FlextResult.fail("no streams here")

    app.add_middleware(Refusing())
    async with serve(app) as client:
        response = await client.get("/events")
    assert problem(response)["status"] == 500
    assert b"never sent" not in response.content


class _Status(FlextApiMiddleware):
    failure_status: ClassVar[int] = 1000


class _NoLimit(SecurityMiddleware):
    max_requests_per_minute: ClassVar[int] = None  # type: ignore[assignment]


class _NegativeLimit(SecurityMiddleware):
    max_requests_per_minute: ClassVar[int] = -1


class _NegativeSize(SecurityMiddleware):
    max_request_size: ClassVar[int] = -1


class _OneType(SecurityMiddleware):
    # ("application/json") without its comma: a str, in which "" and "json" are found too.
    allowed_content_types: ClassVar[tuple[str, ...]] = "application/json"  # type: ignore[assignment]


class _NanSlow(PerformanceMonitoringMiddleware):
    slow_request_ms: ClassVar[float] = math.nan


@pytest.mark.parametrize(
    ("middleware", "setting"),
    [
        (_Status, "failure_status"),
        (_NoLimit, "max_requests_per_minute"),
        (_NegativeLimit, "max_requests_per_minute"),
        (_NegativeSize, "max_request_size"),
        (_OneType, "allowed_content_types"),
        (_NanSlow, "slow_request_ms"),
    ],
)
async def test_settings_out_of_range_are_a_config_error_at_startup(
    build: Build, middleware: type[FlextApiMiddleware], setting: str
) -> None:
    """A subclass setting that would break every request (a TypeError, a 429 or 413 for
    all, a content-type check any string passes, a status the server drops, a slow log
    that never fires) is a ConfigError naming it when the app builds its stack (the
    first ASGI call: uvicorn's lifespan startup)."""
    app = _orders(build())
    app.add_middleware(middleware())
    with pytest.raises(ConfigError, match=f"{middleware.__name__}.{setting}"):
        async with serve(app) as client:
            await client.get("/orders")


async def test_settings_in_range_still_start(build: Build) -> None:
    """Limits at their edges (one request a minute, no body at all) are accepted."""

    class Strict(SecurityMiddleware):
        max_requests_per_minute = 1
        max_request_size = 0
        allowed_content_types = ("application/json",)
        failure_status = 422

    app = _orders(build())
    app.add_middleware(Strict())
    async with serve(app) as client:
        assert (await client.get("/orders")).status_code == 200
        assert (await client.get("/orders")).status_code == 429
