"""Handlers returning FlextResult or raising FlextApiError."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.responses import Response

from flext_api import ErrorCode, FlextApiError, FlextResult
from flext_api._context import request_context
from flext_api.server import FlextRoute, error_response, result_response
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve


class Item(BaseModel):
    """A response model."""

    name: str


async def test_annotated_success_is_serialized_with_model(build: Build) -> None:
    """-> FlextResult[Item] documents Item and returns the value as JSON."""
    app = build()

    @app.get("/item")
    async def item() -> FlextResult[Item]:
        return FlextResult.ok(Item(name="x"))

    async with serve(app) as client:
        response = await client.get("/item")
        schema = (await client.get("/openapi.json")).json()
    assert response.json() == {"name": "x"}
    ok = schema["paths"]["/item"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/Item"}


async def test_unannotated_handlers_returning_a_result_are_unwrapped(build: Build) -> None:
    """No return annotation (or ``-> Any``): a returned FlextResult was a 500 (FastAPI
    cannot encode one); it is unwrapped like an annotated one, async or not."""
    app = build()

    @app.get("/ok")
    async def ok():  # type: ignore[no-untyped-def]
        return FlextResult.ok({"x": 1})

    @app.get("/limited")
    def limited():  # type: ignore[no-untyped-def]
        return FlextResult.fail("slow down", code=ErrorCode.RATE_LIMITED)

    @app.get("/any")
    async def any_value() -> Any:
        return FlextResult.ok([1])

    @app.get("/plain")
    def plain():  # type: ignore[no-untyped-def]
        return {"plain": True}

    async with serve(app) as client:
        answers = [await client.get(p) for p in ("/ok", "/limited", "/any", "/plain")]
    assert [a.status_code for a in answers] == [200, 429, 200, 200]
    assert answers[0].json() == {"x": 1} and answers[2].json() == [1]
    assert problem(answers[1])["code"] == "RATE_LIMITED"
    assert answers[3].json() == {"plain": True}


async def test_annotated_failure_becomes_problem(build: Build) -> None:
    """A failed result becomes the problem response of its error, with Retry-After."""
    app = build()

    @app.get("/item")
    async def item() -> FlextResult[Item]:
        return FlextResult.fail("slow down", code=ErrorCode.RATE_LIMITED, retry_after=7)

    async with serve(app) as client:
        response = await client.get("/item")
    body = problem(response)
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert (body["code"], body["type"], body["detail"]) == (
        "RATE_LIMITED",
        "urn:flext-api:error:rate-limited",
        "slow down",
    )


async def test_sync_annotated_handler_is_unwrapped(build: Build) -> None:
    """Sync handlers annotated with FlextResult are unwrapped too."""
    app = build()

    @app.get("/item")
    def item() -> FlextResult[Item]:
        return FlextResult.ok(Item(name="sync"))

    async with serve(app) as client:
        response = await client.get("/item")
    assert response.json() == {"name": "sync"}


async def test_bare_flextresult_annotation_and_plain_return(build: Build) -> None:
    """-> FlextResult (no parameter) works, and a non-result return value passes through."""
    app = build()

    @app.get("/bare")
    async def bare() -> FlextResult:  # type: ignore[type-arg]
        return FlextResult.ok({"a": 1})

    @app.get("/plain")
    async def plain() -> FlextResult[Item]:
        return PlainTextResponse("raw")  # type: ignore[return-value]

    async with serve(app) as client:
        assert (await client.get("/bare")).json() == {"a": 1}
        assert (await client.get("/plain")).text == "raw"


async def test_router_with_flext_route(build: Build) -> None:
    """APIRouter(route_class=FlextRoute) gives included routers the same behaviour."""
    app = build()
    router = APIRouter(route_class=FlextRoute)

    @router.get("/r")
    async def routed() -> FlextResult[Item]:
        return FlextResult.ok(Item(name="routed"))

    app.include_router(router)
    async with serve(app) as client:
        assert (await client.get("/r")).json() == {"name": "routed"}


async def test_raised_upstream_error_hides_message_and_logs_it(
    build: Build, log_stream: io.StringIO
) -> None:
    """A raised 5xx-class FlextApiError answers generically and logs the real message."""
    app = build()

    @app.get("/up")
    async def up() -> None:
        raise FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "refused by 10.0.0.5:5432")

    async with serve(app) as client:
        response = await client.get("/up")
    assert response.status_code == 502
    assert "10.0.0.5" not in response.text
    [logged] = records(log_stream, "handler failed")
    assert (logged["code"], logged["error"]) == ("CONNECT_ERROR", "refused by 10.0.0.5:5432")


async def test_result_response_helper(build: Build) -> None:
    """result_response returns the value as JSON, a Response as is, or the problem."""
    app = build()

    @app.get("/ok")
    async def ok() -> Response:
        return result_response(FlextResult.ok([1, 2]), status_code=201)

    @app.get("/resp")
    async def resp() -> Response:
        return result_response(FlextResult.ok(PlainTextResponse("as is")))

    @app.get("/fail")
    async def fail(request: Request) -> Response:
        bad: FlextResult[int] = FlextResult.fail("bad id", code=ErrorCode.INVALID_REQUEST)
        return result_response(bad, request=request)

    @app.get("/fail-bare")
    async def fail_bare() -> Response:
        return result_response(FlextResult.fail("gone", code=ErrorCode.CIRCUIT_OPEN))

    async with serve(app) as client:
        created = await client.get("/ok")
        as_is = await client.get("/resp")
        failed = await client.get("/fail", headers={"X-Request-ID": "rid"})
        bare = await client.get("/fail-bare")
    assert (created.status_code, created.json()) == (201, [1, 2])
    assert as_is.text == "as is"
    assert problem(failed) | {"detail": "bad id"} == problem(failed)
    assert (problem(failed)["instance"], problem(failed)["request_id"]) == ("/fail", "rid")
    assert (bare.status_code, problem(bare)["instance"]) == (503, "/fail-bare")
    assert problem(bare)["request_id"] == bare.headers["x-request-id"]


async def test_result_response_without_request_logs_the_5xx_cause(
    build: Build, log_stream: io.StringIO
) -> None:
    """Without request=, a 5xx cause is still logged and the problem has the request ID
    and path, as for an annotated FlextResult route."""
    app = build()

    @app.get("/bill")
    async def bill() -> Response:
        failed: FlextResult[int] = FlextResult.fail(
            "connect to billing-db.internal:5432 refused", code=ErrorCode.CONNECT_ERROR
        )
        return result_response(failed)

    async with serve(app) as client:
        response = await client.get("/bill", headers={"X-Request-ID": "rid-7"})
    body = problem(response)
    assert (response.status_code, body["request_id"], body["instance"]) == (502, "rid-7", "/bill")
    assert "billing-db" not in response.text
    assert int(response.headers["content-length"]) == len(response.content)
    [logged] = records(log_stream, "handler failed")
    assert (logged["error"], logged["request_id"]) == (
        "connect to billing-db.internal:5432 refused",
        "rid-7",
    )


def test_error_response_without_scope_reads_the_request_context() -> None:
    """Built outside a handler's scope, the problem body takes the context's request ID."""
    error = FlextApiError("bad", code=ErrorCode.INVALID_REQUEST)
    with request_context("ctx-1"):
        body = json.loads(bytes(error_response(error).body))
    assert (body["request_id"], body["status"]) == ("ctx-1", 400)
