"""Middleware the user adds runs inside the factory stack: logged, decorated, problem+json."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from flext_api import FlextResult
from flext_api.middleware import FlextApiMiddleware, SecurityMiddleware
from flext_api.server.middleware import ObservedRequestMiddleware, RequestGateMiddleware
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve
from tests.server.live import LiveServer, raw_http, response_headers, wait_for_records


class _OnePerMinute(SecurityMiddleware):
    max_requests_per_minute: ClassVar[int] = 1


class _Tenant(FlextApiMiddleware):
    async def process_request(self, request: Any) -> FlextResult[dict[str, Any]]:
        request.tenant = request.headers["X-Tenant-ID"]  # KeyError without the header: a bug
        return FlextResult.ok({})


def _orders(app: FastAPI) -> FastAPI:
    @app.get("/orders")
    async def orders() -> list[int]:
        return []

    return app


def _layers(app: FastAPI) -> list[type]:
    layer: Any = app.build_middleware_stack()
    found = []
    while layer is not None and layer is not app.router:
        found.append(type(layer))
        layer = getattr(layer, "app", None)
    return found


def test_user_middleware_sits_inside_the_factory_stack(build: Build) -> None:
    """add_middleware puts the user's layer after the request gate, not before the
    observed pass; without user middleware the stack is the factory's alone."""
    plain = build()
    bare = _layers(plain)
    app = build()
    app.add_middleware(_Tenant())
    layers = _layers(app)
    names = [layer.__name__ for layer in layers]
    assert names.index("ObservedRequestMiddleware") < names.index("RequestGateMiddleware")
    assert names.index("RequestGateMiddleware") < names.index("_Bound")
    assert names.index("_DropOwnedHeaders") == names.index("_Bound") - 1
    added = {"_Bound", "_DropOwnedHeaders"}
    assert [layer for layer in layers if layer.__name__ not in added] == bare
    assert "_DropOwnedHeaders" not in [layer.__name__ for layer in bare]
    classes: list[object] = [m.cls for m in plain.user_middleware]
    assert classes == [
        ObservedRequestMiddleware,
        RequestGateMiddleware,
    ]


async def test_user_middleware_refusal_is_logged_and_decorated(
    build: Build, log_stream: io.StringIO
) -> None:
    """A 429 from an added SecurityMiddleware carries the request ID (header and body),
    the security headers, and has its access record."""
    app = _orders(build())
    app.add_middleware(_OnePerMinute())
    async with serve(app) as client:
        first = await client.get("/orders")
        refused = await client.get("/orders")
    assert first.status_code == 200
    body = problem(refused)
    assert body["status"] == 429
    assert body["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["x-frame-options"] == "DENY"
    access = records(log_stream, "request")
    assert [(r["status"], r["request_id"]) for r in access][-1] == (429, body["request_id"])


async def test_crashing_flext_middleware_is_a_logged_problem_500(
    build: Build, log_stream: io.StringIO
) -> None:
    """A bug in an added FlextApiMiddleware is a problem+json 500 with the request ID,
    logged once as an unhandled exception."""
    app = _orders(build())
    app.add_middleware(_Tenant())
    async with serve(app) as client:
        response = await client.get("/orders")
        ok = await client.get("/orders", headers={"X-Tenant-ID": "t1"})
    body = problem(response)
    assert (body["status"], body["request_id"]) == (500, response.headers["x-request-id"])
    assert ok.status_code == 200
    crashes = records(log_stream, "unhandled exception")
    assert len(crashes) == 1
    assert "KeyError" in crashes[0]["exception"]


def test_crashing_http_middleware_over_uvicorn_is_a_problem_500(
    build: Build, log_stream: io.StringIO, live: Callable[[FastAPI], LiveServer]
) -> None:
    """@app.middleware("http") (seed 002's pipeline) that raises gives a problem+json 500
    with the security headers over a real socket, and its access record says 500."""
    app = _orders(build())

    @app.middleware("http")
    async def pipeline(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.headers.get("x-crash"):
            raise RuntimeError("pipeline bug")
        return await call_next(request)

    server = live(app)
    raw = raw_http(
        server.port, b"GET /orders HTTP/1.1\r\nHost: x\r\nX-Crash: 1\r\nConnection: close\r\n\r\n"
    )
    status, headers = response_headers(raw)
    found = dict(headers)
    assert (status, found["content-type"]) == (500, "application/problem+json")
    assert found["x-content-type-options"] == "nosniff"
    logged = wait_for_records(log_stream, 1)
    assert [r["status"] for r in logged if r.get("event") == "request"] == [500]
    assert [r["request_id"] for r in logged if r.get("event") == "unhandled exception"] == [
        found["x-request-id"]
    ]


async def test_probes_do_not_pass_through_user_middleware(build: Build) -> None:
    """/health is answered by the factory's gate before an added middleware runs."""
    app = build()
    app.add_middleware(_Tenant())
    async with serve(app) as client:
        response = await client.get("/health")
    assert response.status_code == 200


async def test_inner_request_id_and_timing_headers_are_replaced(
    build: Build, log_stream: io.StringIO
) -> None:
    """A user middleware setting X-Request-ID / X-Response-Time does not make a second
    line: the factory's values, the ones it logs, are sent once."""
    app = _orders(build())

    @app.middleware("http")
    async def own_ids(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["X-Request-ID"] = "made-up"
        response.headers["X-Response-Time"] = "0ms"
        return response

    async with serve(app) as client:
        response = await client.get("/orders")
    (request_id,) = response.headers.get_list("x-request-id")
    (timing,) = response.headers.get_list("x-response-time")
    assert request_id != "made-up" and timing != "0ms"
    assert records(log_stream, "request")[0]["request_id"] == request_id
