"""CORS: explicit allow-list, preflights, and no headers for unknown origins."""

from __future__ import annotations

import pytest

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import CorsConfig
from tests.server.conftest import Build
from tests.server.helpers import problem, serve

GOOD = "https://app.example.com"
EVIL = "https://evil.example"


def _config(**cors: object) -> ServerConfig:
    return ServerConfig(cors=CorsConfig(allow_origins=(GOOD,), **cors))  # type: ignore[arg-type]


async def test_allowed_origin_gets_headers(build: Build) -> None:
    """A listed origin is echoed, with exposed headers and Vary: Origin."""
    async with serve(build(_config())) as client:
        response = await client.get("/health", headers={"Origin": GOOD})
    assert response.headers["access-control-allow-origin"] == GOOD
    assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    assert "Origin" in response.headers["vary"]
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("path", ["/health", "/missing"])
async def test_unknown_origin_gets_no_cors_headers(build: Build, path: str) -> None:
    """An unlisted origin gets no Access-Control-* headers, on success or error."""
    async with serve(build(_config(allow_credentials=True))) as client:
        response = await client.get(path, headers={"Origin": EVIL})
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert response.headers["vary"] == "Origin"


async def test_credentials_header_for_allowed_origin(build: Build) -> None:
    """allow_credentials adds Access-Control-Allow-Credentials for listed origins."""
    async with serve(build(_config(allow_credentials=True))) as client:
        response = await client.get("/health", headers={"Origin": GOOD})
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_preflight_allowed(build: Build) -> None:
    """A valid preflight is answered 204 with methods, headers and max-age."""
    async with serve(build(_config(allow_credentials=True))) as client:
        response = await client.options(
            "/anything",
            headers={
                "Origin": GOOD,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-request-id",
            },
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == GOOD
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "X-Request-ID" in response.headers["access-control-allow-headers"]
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        (EVIL, "GET", None),
        (GOOD, "CONNECT", None),
        (GOOD, "GET", "x-secret-header"),
    ],
)
async def test_preflight_refused(
    build: Build, origin: str, method: str, headers: str | None
) -> None:
    """Unknown origin, method or header: 403 problem, no allow headers."""
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        request_headers["Access-Control-Request-Headers"] = headers
    async with serve(build(_config())) as client:
        response = await client.options("/x", headers=request_headers)
    assert problem(response)["status"] == 403
    assert "access-control-allow-origin" not in response.headers


async def test_wildcard_without_credentials(build: Build) -> None:
    """'*' answers any origin with '*' when credentials are off."""
    config = ServerConfig(cors=CorsConfig(allow_origins=("*",)))
    async with serve(build(config)) as client:
        response = await client.get("/health", headers={"Origin": EVIL})
    assert response.headers["access-control-allow-origin"] == "*"


async def test_no_origin_no_headers(build: Build) -> None:
    """Same-origin requests (no Origin header) are untouched."""
    async with serve(build(_config())) as client:
        response = await client.get("/health")
    assert "access-control-allow-origin" not in response.headers


def test_wildcard_with_credentials_refused_at_build() -> None:
    """'*' plus credentials is a ConfigError when the config is built."""
    with pytest.raises(ConfigError, match="cannot be combined"):
        CorsConfig(allow_origins=("*",), allow_credentials=True)


def test_origin_must_be_an_origin() -> None:
    """An origin with a path is rejected."""
    with pytest.raises(ValueError, match="scheme://host"):
        CorsConfig(allow_origins=("https://a.example/path",))
