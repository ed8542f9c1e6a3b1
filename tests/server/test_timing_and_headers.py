"""X-Response-Time and the security headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from flext_api import ServerConfig
from flext_api._server_config import SecurityHeadersConfig
from tests.server.conftest import Build
from tests.server.helpers import serve

EXPECTED = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


async def test_response_time_header(build: Build) -> None:
    """Every response carries X-Response-Time in milliseconds."""
    async with serve(build()) as client:
        response = await client.get("/health")
    assert re.fullmatch(r"\d+\.\d{3}ms", response.headers["x-response-time"])


async def test_response_time_header_renamed(build: Build) -> None:
    """response_time_header renames it."""
    async with serve(build(ServerConfig(response_time_header="Server-Elapsed"))) as client:
        response = await client.get("/health")
    assert "server-elapsed" in response.headers and "x-response-time" not in response.headers


@pytest.mark.parametrize("path", ["/health", "/missing"])
async def test_security_headers_present(build: Build, path: str) -> None:
    """The OWASP header set is on success and error responses."""
    async with serve(build()) as client:
        response = await client.get(path)
    assert {k: response.headers.get(k) for k in EXPECTED} == EXPECTED
    assert "camera=()" in response.headers["permissions-policy"]


async def test_handler_header_wins(build: Build) -> None:
    """A header the handler set is not overwritten or duplicated."""
    app = build()

    @app.get("/cacheable")
    async def cacheable() -> JSONResponse:
        return JSONResponse({}, headers={"Cache-Control": "public, max-age=60"})

    async with serve(app) as client:
        response = await client.get("/cacheable")
    assert response.headers.get_list("cache-control") == ["public, max-age=60"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_docs_get_relaxed_csp(build: Build) -> None:
    """The Swagger page gets the docs CSP, which allows its CDN scripts."""
    async with serve(build()) as client:
        docs = await client.get("/docs")
        api = await client.get("/openapi.json")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert api.headers["content-security-policy"] == EXPECTED["content-security-policy"]


async def test_headers_configurable(build: Build) -> None:
    """None turns a header off; extra adds headers."""
    config = ServerConfig(
        security_headers=SecurityHeadersConfig(
            strict_transport_security=None, extra={"X-Permitted-Cross-Domain-Policies": "none"}
        )
    )
    async with serve(build(config)) as client:
        response = await client.get("/health")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-permitted-cross-domain-policies"] == "none"


async def test_headers_disabled(build: Build) -> None:
    """enabled=False removes the layer."""
    config = ServerConfig(security_headers=SecurityHeadersConfig(enabled=False))
    async with serve(build(config)) as client:
        response = await client.get("/health")
    assert "x-frame-options" not in response.headers


@pytest.mark.parametrize(
    "config",
    [
        {"request_id_header": "X Request Id"},
        {"request_id_header": ""},
        {"response_time_header": "X-Time\r\nInjected"},
        {"security_headers": {"cache_control": "no-store\r\nX-Injected: 1"}},
        {"security_headers": {"extra": {"X-Policy": "a\nb"}}},
        {"security_headers": {"extra": {"Bad Name": "v"}}},
    ],
)
def test_a_header_that_cannot_be_sent_is_refused_with_the_config(config: dict[str, Any]) -> None:
    """A header name or value that uvicorn would refuse on every response (a space in a
    name, CR/LF in a value) fails when the config is built, naming the field."""
    with pytest.raises(ValidationError) as caught:
        ServerConfig(**config)
    assert next(iter(config)) in str(caught.value)


def test_an_empty_response_time_header_turns_it_off() -> None:
    """response_time_header="" stays a way to turn the header off."""
    assert ServerConfig(response_time_header="").response_time_header == ""
