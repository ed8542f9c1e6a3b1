"""Error middleware and handlers: every error is problem+json, 500s leak nothing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from flext_api import ErrorCode, FlextResult
from flext_api.server.middleware import ErrorMiddleware
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve
from tests.server.live import LiveServer, raw_http, response_headers, wait_for_records

SECRET = "db-password-hunter2"


class Item(BaseModel):
    """A JSON body."""

    name: str
    count: int


def _failing_app(build: Build) -> FastAPI:
    app = build()

    @app.get("/boom")
    async def boom() -> None:
        local_secret = SECRET  # a local a debug page would show
        raise RuntimeError(f"cannot connect with {local_secret}")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, detail={"why": "short and stout"})

    @app.post("/items")
    async def items(item: Item) -> Item:
        return item

    return app


@pytest.mark.parametrize("accept", ["text/html", "application/json", "*/*"])
async def test_unhandled_exception_is_generic_problem(build: Build, accept: str) -> None:
    """A handler crash gives a 500 problem+json without traceback or secrets, any Accept."""
    app = _failing_app(build)
    async with serve(app) as client:
        response = await client.get(
            "/boom", headers={"Accept": accept, "Authorization": "Bearer tok"}
        )
    body = problem(response)
    assert response.status_code == 500
    assert body["title"] == "Internal Server Error"
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "Bearer" not in response.text


async def test_unhandled_exception_is_logged_once_with_traceback(
    build: Build, log_stream: io.StringIO
) -> None:
    """The server log (not the client) gets the traceback, with the request ID."""
    app = _failing_app(build)
    async with serve(app) as client:
        await client.get("/boom", headers={"X-Request-ID": "crash-1"})
    [crash] = records(log_stream, "unhandled exception")
    assert crash["request_id"] == "crash-1"
    assert "RuntimeError" in crash["exception"]
    assert crash["response_started"] is False


async def test_404_and_405_are_problems(build: Build) -> None:
    """Router errors (unknown path, wrong method) use the problem format."""
    app = _failing_app(build)
    async with serve(app) as client:
        missing = await client.get("/nope")
        wrong_method = await client.delete("/boom")
    assert problem(missing)["status"] == 404
    assert problem(missing)["instance"] == "/nope"
    assert problem(wrong_method)["status"] == 405


async def test_http_exception_with_structured_detail(build: Build) -> None:
    """A non-string HTTPException detail moves to the errors member."""
    app = _failing_app(build)
    async with serve(app) as client:
        response = await client.get("/teapot")
    body = problem(response)
    assert (body["status"], body["detail"], body["errors"]) == (
        418,
        "I'm a Teapot",
        {"why": "short and stout"},
    )


async def test_validation_error_lists_fields_without_input(build: Build) -> None:
    """422 problems carry loc/msg/type per field and never echo the submitted value."""
    app = _failing_app(build)
    async with serve(app) as client:
        response = await client.post("/items", json={"name": SECRET, "count": "many"})
    body = problem(response)
    assert body["status"] == 422
    assert body["errors"] == [
        {
            "loc": ["body", "count"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]
    assert SECRET not in response.text


async def test_invalid_json_body_is_422(build: Build) -> None:
    """A JSON body that does not parse is a validation problem."""
    app = _failing_app(build)
    async with serve(app) as client:
        response = await client.post(
            "/items", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert problem(response)["errors"][0]["type"] == "json_invalid"


async def test_exception_after_response_start_is_reraised(build: Build) -> None:
    """Once the response started, the error is logged and re-raised (connection aborts)."""
    app = build()

    async def body() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("mid-stream")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(body())

    async with serve(app) as client:
        with pytest.raises(RuntimeError, match="mid-stream"):
            await client.get("/stream")


async def test_http_exception_escaping_the_app_keeps_status(log_stream: io.StringIO) -> None:
    """An HTTPException no handler caught becomes a problem with its own status."""

    async def raw(scope: object, receive: object, send: object) -> None:
        raise HTTPException(409, "conflict", headers={"X-Why": "dup"})

    from flext_api.server import make_json_logger

    app = ErrorMiddleware(raw, logger=make_json_logger(log_stream))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/x")
    assert (response.status_code, response.headers["x-why"]) == (409, "dup")
    assert problem(response)["detail"] == "conflict"


class _Order(BaseModel):
    """A JSON body whose string a client controls."""

    sku: str


def _quoting_app(build: Build) -> FastAPI:
    app = build()

    @app.post("/missing")
    async def missing(order: _Order) -> None:
        raise HTTPException(404, f"unknown sku {order.sku}")

    @app.post("/invalid")
    async def invalid(order: _Order) -> FlextResult[int]:
        return FlextResult.fail(f"unknown sku {order.sku}", code=ErrorCode.INVALID_REQUEST)

    @app.post("/bug")
    async def bug(order: _Order) -> None:
        raise ValueError(f"cannot price sku {order.sku}")

    return app


# Valid JSON: "\ud800" is an escape JSON allows, which decodes to a lone surrogate.
_SURROGATE_BODY = b'{"sku": "ab\\ud800"}'


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/invalid", 400), ("/bug", 500)])
async def test_lone_surrogate_in_an_error_message_keeps_the_problem(
    build: Build, log_stream: io.StringIO, path: str, status: int
) -> None:
    """A message quoting a client's lone surrogate still gives the intended problem
    document, with the surrogate escaped and the request ID."""
    async with serve(_quoting_app(build)) as client:
        response = await client.post(
            path, content=_SURROGATE_BODY, headers={"Content-Type": "application/json"}
        )
    body = problem(response)
    assert (response.status_code, body["request_id"]) == (status, response.headers["x-request-id"])
    if status < 500:
        assert body["detail"] == "unknown sku ab\\ud800"
    else:
        assert len(records(log_stream, "unhandled exception")) == 1


def test_lone_surrogate_in_a_crash_is_logged_over_uvicorn(
    build: Build, log_stream: io.StringIO, live: Callable[[FastAPI], LiveServer]
) -> None:
    """Over a real socket, a handler bug quoting a lone surrogate is a problem+json 500
    and one 'unhandled exception' record holding the escaped text."""
    server = live(_quoting_app(build))
    body = _SURROGATE_BODY
    raw = raw_http(
        server.port,
        b"POST /bug HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
    )
    status, headers = response_headers(raw)
    assert (status, dict(headers)["content-type"]) == (500, "application/problem+json")
    logged = wait_for_records(log_stream, 1)
    crashes = [r for r in logged if r.get("event") == "unhandled exception"]
    assert len(crashes) == 1
    assert "cannot price sku ab\\ud800" in crashes[0]["exception"]
