"""The factory's middleware stack against hostile input, over a real uvicorn listener."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import CorsConfig
from flext_api.server.middleware import CorsMiddleware
from tests.server.conftest import Build
from tests.server.live import LiveServer, raw_http, response_headers, wait_for_records

APP_ORIGIN = "https://app.example.com"


def _split(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers = response_headers(raw)
    return status, headers, raw.split(b"\r\n\r\n", 1)[1]


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key == name]


def _get(port: int, path: str, *lines: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in lines)
    request = f"GET {path} HTTP/1.1\r\nHost: testserver\r\n{head}Connection: close\r\n\r\n"
    return raw_http(port, request.encode("latin-1"))


# -- bodyless statuses ----------------------------------------------------------------------


class _RaiseNotModified:
    """A user middleware raising ``HTTPException(304)`` outside every exception handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/escaped-304":
            raise HTTPException(304, headers={"ETag": '"v2"'})
        await self.app(scope, receive, send)


def _bodyless_app(build: Build) -> FastAPI:
    app = build()

    @app.get("/raise/{status}")
    async def raise_status(status: int) -> None:
        raise HTTPException(status, headers={"ETag": '"v1"'})

    app.add_middleware(_RaiseNotModified)
    return app


@pytest.mark.parametrize(
    ("path", "status"),
    [("/raise/304", 304), ("/raise/204", 204), ("/raise/205", 205), ("/escaped-304", 304)],
)
def test_an_http_exception_with_a_bodyless_status_is_answered_without_content(
    build: Build, live: Callable[[FastAPI], LiveServer], path: str, status: int
) -> None:
    """HTTPException(304/204/205), from a handler or a middleware, is answered with its
    headers and no content, and the pipelined request behind it is answered too (a
    problem body there made uvicorn drop the connection)."""
    server = live(_bodyless_app(build))
    pipelined = (
        f"GET {path} HTTP/1.1\r\nHost: testserver\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: testserver\r\nConnection: close\r\n\r\n"
    )
    raw = raw_http(server.port, pipelined.encode())
    first, _, second = raw.partition(b"HTTP/1.1 200 OK\r\n")
    code, headers, body = _split(first)
    assert code == status
    assert body == b""
    assert _values(headers, "etag") == ['"v1"' if path.startswith("/raise") else '"v2"']
    assert _values(headers, "content-type") == []
    assert _values(headers, "content-length") == (["0"] if status == 205 else [])
    assert _values(headers, "x-content-type-options") == ["nosniff"]
    assert b'{"status":"pass"}' in second


# -- BaseException from a handler -----------------------------------------------------------


class _Halt(BaseException):
    """A library's own control-flow exception, not an ``Exception``."""


def test_a_base_exception_from_a_handler_is_a_problem_500_with_every_header(
    build: Build, live: Callable[[FastAPI], LiveServer], log_stream: io.StringIO
) -> None:
    """A handler raising a BaseException that is no Exception gets the stack's problem
    500 (security headers, request ID, the same ID in body and log), logged as a 500 -
    not uvicorn's bare text/plain 500 logged as a client that went away."""
    app = build()

    @app.get("/halt")
    async def halt() -> None:
        raise _Halt("internal detail")

    server = live(app)
    status, headers, body = _split(_get(server.port, "/halt", "X-Request-ID: halt-1"))
    assert status == 500
    assert _values(headers, "content-type") == ["application/problem+json"]
    assert _values(headers, "x-frame-options") == ["DENY"]
    assert _values(headers, "x-request-id") == ["halt-1"]
    document = json.loads(body)
    assert document["request_id"] == "halt-1"
    assert b"internal detail" not in body
    records = wait_for_records(log_stream, 1)
    access = [r for r in records if r.get("event") == "request"]
    assert [(r["status"], r["request_id"]) for r in access] == [(500, "halt-1")]
    errors = [r for r in records if r.get("event") == "unhandled exception"]
    assert [r["request_id"] for r in errors] == ["halt-1"]


# -- request IDs ----------------------------------------------------------------------------


def test_a_request_id_set_by_the_handler_is_replaced_by_the_stacks_own(
    build: Build, live: Callable[[FastAPI], LiveServer], log_stream: io.StringIO
) -> None:
    """A handler setting X-Request-ID (or X-Response-Time) itself does not give the
    response a second, different ID: the one sent is the one logged."""
    app = build()

    @app.get("/own")
    async def own() -> Response:
        return Response("x", headers={"X-Request-ID": "from-handler", "X-Response-Time": "1ms"})

    server = live(app)
    _, headers, _ = _split(_get(server.port, "/own", "X-Request-ID: client-7"))
    assert _values(headers, "x-request-id") == ["client-7"]
    assert len(_values(headers, "x-response-time")) == 1
    assert _values(headers, "x-response-time") != ["1ms"]
    access = [r for r in wait_for_records(log_stream, 1) if r.get("event") == "request"]
    assert [r["request_id"] for r in access] == ["client-7"]


# -- CORS -----------------------------------------------------------------------------------


def _cors(**cors: Any) -> ServerConfig:
    return ServerConfig(cors=CorsConfig(allow_origins=(APP_ORIGIN,), **cors))


@pytest.mark.parametrize("origins", [(APP_ORIGIN,), ("*",)])
def test_vary_origin_is_sent_to_a_request_without_origin(
    build: Build, live: Callable[[FastAPI], LiveServer], origins: tuple[str, ...]
) -> None:
    """With CORS on, a same-origin request (no Origin) gets Vary: Origin too, so a
    shared cache never serves its CORS-less answer to a cross-origin request."""
    server = live(build(ServerConfig(cors=CorsConfig(allow_origins=origins))))
    _, headers, _ = _split(_get(server.port, "/health"))
    assert _values(headers, "vary") == ["Origin"]
    assert _values(headers, "access-control-allow-origin") == []


def test_vary_origin_is_not_repeated_when_the_app_varies_on_it(
    build: Build, live: Callable[[FastAPI], LiveServer]
) -> None:
    """An app that already sends Vary naming Origin does not get a second Vary line."""
    app = build(_cors())

    @app.get("/varied")
    async def varied() -> Response:
        return Response("x", headers={"Vary": "Accept-Encoding, origin"})

    server = live(app)
    for lines in ((), (f"Origin: {APP_ORIGIN}",), ("Origin: https://evil.example",)):
        _, headers, _ = _split(_get(server.port, "/varied", *lines))
        assert _values(headers, "vary") == ["Accept-Encoding, origin"]


def _preflight(port: int, *lines: str) -> tuple[int, list[tuple[str, str]]]:
    head = "".join(f"{line}\r\n" for line in lines)
    request = (
        "OPTIONS /health HTTP/1.1\r\nHost: testserver\r\n"
        f"Origin: {APP_ORIGIN}\r\nAccess-Control-Request-Method: POST\r\n"
        f"{head}Connection: close\r\n\r\n"
    )
    status, headers, _ = _split(raw_http(port, request.encode()))
    return status, headers


def test_a_preflight_for_content_type_names_it_in_the_allowed_headers(
    build: Build, live: Callable[[FastAPI], LiveServer]
) -> None:
    """A browser preflighting a JSON POST asks for content-type; the 204 names it even
    when allow_headers does not, or the browser drops the preflight it was granted."""
    server = live(build(_cors(allow_headers=("Authorization",))))
    status, headers = _preflight(
        server.port, "Access-Control-Request-Headers: content-type, authorization"
    )
    assert status == 204
    (allowed,) = _values(headers, "access-control-allow-headers")
    names = {name.strip().lower() for name in allowed.split(",")}
    assert {"content-type", "authorization"} <= names


def test_repeated_request_headers_lines_are_one_list(
    build: Build, live: Callable[[FastAPI], LiveServer]
) -> None:
    """A header not allowed in a first Access-Control-Request-Headers line is not hidden
    by a second, allowed one: the preflight is refused."""
    server = live(build(_cors()))
    status, headers = _preflight(
        server.port,
        "Access-Control-Request-Headers: x-not-allowed",
        "Access-Control-Request-Headers: authorization",
    )
    assert status == 403
    assert _values(headers, "access-control-allow-origin") == []
    assert _values(headers, "vary") == ["Origin"]


def test_the_cors_middleware_refuses_a_wildcard_with_credentials() -> None:
    """Built by hand, '*' with credentials is refused too (it would echo every origin
    with Access-Control-Allow-Credentials: true)."""
    with pytest.raises(ConfigError, match="cannot be combined"):
        CorsMiddleware(FastAPI(), allow_origins=["*"], allow_credentials=True)
