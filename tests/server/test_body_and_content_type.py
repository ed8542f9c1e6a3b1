"""Body limit (413) and JSON content-type enforcement (415)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from fastapi import FastAPI, Request, params
from fastapi.routing import APIRoute
from pydantic import BaseModel

from flext_api import ServerConfig
from flext_api.server.middleware import BodyLimitMiddleware
from flext_api.server.middleware._content_type import _is_json_route, is_json_content_type
from tests.server.conftest import Build
from tests.server.helpers import problem, serve

LIMIT = 1024


class Item(BaseModel):
    """A JSON body."""

    name: str


def _app(build: Build, calls: list[str], **config: object) -> FastAPI:
    app = build(ServerConfig(max_body_size=LIMIT, **config))  # type: ignore[arg-type]

    @app.post("/items")
    async def items(item: Item) -> Item:
        calls.append("items")
        return item

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        calls.append("raw")
        return {"size": len(await request.body())}

    return app


async def _chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


async def test_content_length_over_limit_is_413_before_handler(build: Build) -> None:
    """An honest Content-Length above the limit is refused without running the handler."""
    calls: list[str] = []
    async with serve(_app(build, calls)) as client:
        response = await client.post("/raw", content=b"x" * (LIMIT + 1))
    assert problem(response)["status"] == 413
    assert calls == []


async def test_streamed_body_over_limit_is_413(build: Build) -> None:
    """A body without Content-Length is cut off once the streamed bytes pass the limit."""
    calls: list[str] = []
    async with serve(_app(build, calls)) as client:
        response = await client.post(
            "/items", content=_chunks(LIMIT * 4), headers={"Content-Type": "application/json"}
        )
    assert problem(response)["status"] == 413
    assert calls == []


async def test_body_at_limit_passes(build: Build) -> None:
    """Exactly max_body_size bytes are accepted."""
    calls: list[str] = []
    async with serve(_app(build, calls)) as client:
        response = await client.post("/raw", content=b"x" * LIMIT)
    assert response.json() == {"size": LIMIT}


async def test_limit_outside_fastapi_still_answers_413() -> None:
    """Used on a bare ASGI app, the streamed-limit signal becomes a 413 at the top."""
    from flext_api.server import make_json_logger
    from flext_api.server.middleware import ErrorMiddleware

    async def reader(scope: object, receive: object, send: object) -> None:
        while (await receive())["more_body"]:  # type: ignore[operator]
            pass

    import io

    app = ErrorMiddleware(
        BodyLimitMiddleware(reader, max_body_size=10), logger=make_json_logger(io.StringIO())
    )
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/", content=_chunks(100, 8))
    assert problem(response)["status"] == 413


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"9" * 5000, 413), (b"0" * 5000 + b"1025", 413), (b"0" * 5000 + b"1024", 200)],
    ids=["5000-digits", "zero-padded-over", "zero-padded-at-limit"],
)
async def test_content_length_of_thousands_of_digits_is_compared(
    build: Build, length: bytes, status: int
) -> None:
    """A Content-Length too long for int() is still compared with the limit: never a 500."""
    app = _app(build, [])
    sent: list[dict[str, object]] = []
    body = b"x" * LIMIT

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/raw", "raw_path": b"/raw", "query_string": b"",
        "root_path": "", "client": ("203.0.113.7", 1234), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"content-length", length)],
    }  # fmt: skip
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == status


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/merge-patch+json", True),
        (b"text/plain", False),
        (b"application/jsonx", False),
        (b"text/json", False),
    ],
)
def test_json_content_type_detection(content_type: bytes, expected: bool) -> None:
    """application/json and application/*+json count as JSON, with parameters."""
    assert is_json_content_type(content_type) is expected


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_body_to_json_route_is_415(build: Build, content_type: str | None) -> None:
    """A JSON route refuses other (or missing) content types before the handler runs."""
    calls: list[str] = []
    headers = {"Content-Type": content_type} if content_type else {}
    async with serve(_app(build, calls)) as client:
        response = await client.post("/items", content=b'{"name": "x"}', headers=headers)
    assert problem(response)["status"] == 415
    assert calls == []


async def test_json_variants_accepted(build: Build) -> None:
    """application/json with charset and +json types reach the handler."""
    calls: list[str] = []
    async with serve(_app(build, calls)) as client:
        plain = await client.post(
            "/items",
            content=b'{"name": "x"}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        suffixed = await client.post(
            "/items", content=b'{"name": "y"}', headers={"Content-Type": "application/ld+json"}
        )
    assert (plain.status_code, suffixed.status_code) == (200, 200)


async def test_raw_body_route_not_checked(build: Build) -> None:
    """A route reading the raw body (no body parameter) accepts any content type."""
    calls: list[str] = []
    async with serve(_app(build, calls)) as client:
        raw = await client.post("/raw", content=b"text", headers={"Content-Type": "text/plain"})
    assert raw.json() == {"size": 4}


def test_json_route_detection() -> None:
    """Body-parameter routes are JSON routes unless the body is a Form/File field."""

    async def endpoint(item: Item) -> Item:
        return item

    async def no_body() -> None:
        return None

    route = APIRoute("/x", endpoint, methods=["POST"])
    assert _is_json_route(route) is True
    assert _is_json_route(APIRoute("/y", no_body)) is False
    assert _is_json_route(None) is False
    assert route.body_field is not None
    # Form routes need python-multipart to be declared; swap the field info instead.
    route.body_field.field_info = params.Form()
    assert _is_json_route(route) is False


async def test_unknown_route_with_body_is_404(build: Build) -> None:
    """A non-JSON body to an unknown path is a plain 404 (no route, no check)."""
    async with serve(_app(build, [])) as client:
        response = await client.post("/nope", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 404


async def test_check_can_be_disabled(build: Build) -> None:
    """enforce_json_content_type=False lets FastAPI decide (422 here)."""
    calls: list[str] = []
    app = _app(build, calls, enforce_json_content_type=False)
    async with serve(app) as client:
        response = await client.post(
            "/items", content=b'{"name": "x"}', headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 422
