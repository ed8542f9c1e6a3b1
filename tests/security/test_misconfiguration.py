"""OWASP API8 (security misconfiguration) and operational failure cases."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid
from collections.abc import Callable

import httpx2
import pytest
from fastapi import Depends, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import CorsConfig, HealthConfig, ServerRateLimitConfig
from flext_api.server import rate_limit
from tests.security.apps import SECRET, secure_app
from tests.server.helpers import problem, serve
from tests.server.live import LiveServer, raw_http, response_headers

Live = Callable[[FastAPI], LiveServer]
SECURITY_HEADERS = (
    "cache-control",
    "content-security-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "permissions-policy",
    "x-request-id",
    "x-response-time",
)
ORIGIN = "https://app.example.com"


def _app_with_limit(stream: io.StringIO, config: ServerConfig | None = None) -> FastAPI:
    app = secure_app(stream, config)

    @app.get("/limited", dependencies=[Depends(rate_limit("tight", "1/minute"))])
    async def limited() -> dict[str, str]:
        return {}

    return app


@pytest.mark.integration
def test_security_headers_on_every_status(live: Live) -> None:
    """200, 404, 405, 413, 415, 422, 429 and 500 all carry the security headers."""
    # The moving window counts exactly (the default counter rounds at a window edge).
    limits = ServerRateLimitConfig(strategy="moving-window")
    server = live(
        _app_with_limit(io.StringIO(), ServerConfig(max_body_size=1024, rate_limit=limits))
    )
    with httpx2.Client(base_url=server.url) as client:
        client.get("/limited")
        responses = {
            200: client.get("/hello"),
            404: client.get("/no-such-path"),
            405: client.delete("/hello"),
            413: client.post("/upload", content=b"x" * 2048),
            415: client.post("/orders", content=b"{}", headers={"Content-Type": "text/plain"}),
            422: client.post("/orders", json={"item": 1}),
            429: client.get("/limited"),
            500: client.get("/boom"),
        }
    for status, response in responses.items():
        assert response.status_code == status
        missing = [h for h in SECURITY_HEADERS if h not in response.headers]
        assert missing == [], f"{status} lacks {missing}"
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("accept", ["text/html", "application/json", "application/xml"])
async def test_unhandled_exception_reveals_nothing(accept: str) -> None:
    """A crash is a generic problem+json 500 with the request ID, whatever the Accept."""
    async with serve(secure_app(io.StringIO())) as client:
        response = await client.get(
            "/boom",
            headers={
                "Accept": accept,
                "Authorization": "Bearer secret-token",
                "X-Request-ID": "r-9",
            },
        )
    body = problem(response)
    assert (response.status_code, body["request_id"], body["instance"]) == (500, "r-9", "/boom")
    for leak in (SECRET, "hunter2", "Traceback", "RuntimeError", "secret-token", "boom()"):
        assert leak not in response.text


@pytest.mark.parametrize("path", ["/boom", "/no-such-path", "/me"])
async def test_cors_refuses_unknown_origin_on_errors(path: str) -> None:
    """On 500, 404 and 401 an unknown origin gets no CORS headers; a listed one does."""
    config = ServerConfig(cors=CorsConfig(allow_origins=(ORIGIN,), allow_credentials=True))
    async with serve(secure_app(io.StringIO(), config)) as client:
        evil = await client.get(path, headers={"Origin": "https://evil.example"})
        good = await client.get(path, headers={"Origin": ORIGIN})
    assert evil.status_code >= 400
    assert not [h for h in evil.headers if h.startswith("access-control-")]
    assert good.headers["access-control-allow-origin"] == ORIGIN


def test_wildcard_origin_with_credentials_refused_at_build() -> None:
    """Origins ['*'] with credentials never builds."""
    with pytest.raises(ConfigError):
        ServerConfig(cors=CorsConfig(allow_origins=("*",), allow_credentials=True))


async def test_unknown_host_is_400() -> None:
    """A Host header outside allowed_hosts is a 400 problem."""
    config = ServerConfig(allowed_hosts=("api.example.com",))
    async with serve(secure_app(io.StringIO(), config)) as client:
        response = await client.get("/hello", headers={"Host": "attacker.example"})
    assert problem(response)["status"] == 400


@pytest.mark.parametrize(
    ("host", "status"),
    [
        (b"api.example.com", 200),
        (b"API.Example.COM.:8443", 200),
        (b"api.example.com:x", 400),
        (b"api.example.com:443@evil.example", 400),
        (b"[::1]api.example.com", 400),
    ],
)
def test_host_with_a_port_that_is_no_number_is_400(live: Live, host: bytes, status: int) -> None:
    """An allowed name followed by something other than a port is refused on the wire."""
    server = live(secure_app(io.StringIO(), ServerConfig(allowed_hosts=("api.example.com",))))
    request = b"GET /hello HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    raw = raw_http(server.port, request)
    got, headers = response_headers(raw)
    assert got == status
    if status == 400:
        assert dict(headers)["content-type"] == "application/problem+json"


async def test_trace_and_method_override_are_not_honoured() -> None:
    """TRACE is 405, and X-HTTP-Method-Override does not turn a GET into a DELETE."""
    app = secure_app(io.StringIO())
    async with serve(app) as client:
        trace = await client.request("TRACE", "/hello")
        override = await client.get("/hello", headers={"X-HTTP-Method-Override": "DELETE"})
    assert trace.status_code == 405
    assert override.status_code == 200


async def test_docs_can_be_switched_off() -> None:
    """docs_enabled=False: no /docs, /redoc or /openapi.json in production."""
    async with serve(secure_app(io.StringIO(), ServerConfig(docs_enabled=False))) as client:
        statuses = [(await client.get(p)).status_code for p in ("/docs", "/redoc", "/openapi.json")]
    assert statuses == [404, 404, 404]


def _series(text: str) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


async def test_random_404_paths_add_no_metric_series() -> None:
    """1,000 random unmatched paths leave the number of series unchanged."""
    async with serve(secure_app(io.StringIO())) as client:
        await client.get(f"/{uuid.uuid4().hex}")  # create the <unmatched> series once
        await client.get("/metrics")
        before = _series((await client.get("/metrics")).text)
        for _ in range(1000):
            await client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")
        after = _series((await client.get("/metrics")).text)
    assert after == before


@pytest.mark.integration
def test_hanging_readiness_check_is_503_within_timeout(live: Live) -> None:
    """A dependency check that hangs makes /ready 503 within check_timeout; /health stays 200."""

    async def hangs() -> None:
        await asyncio.sleep(3600)

    config = ServerConfig(health=HealthConfig(check_timeout=0.5))
    server = live(secure_app(io.StringIO(), config, readiness_checks={"database": hangs}))
    with httpx2.Client(base_url=server.url, timeout=5) as client:
        started = time.monotonic()
        ready = client.get("/ready")
        elapsed = time.monotonic() - started
        health = client.get("/health")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"][0]["output"] == "timed out"
    assert 0.4 <= elapsed < 30.0  # cut at check_timeout, not waited out (a generous bound)
    assert health.status_code == 200


@pytest.mark.integration
def test_shutdown_flips_readiness_and_finishes_in_flight(live: Live) -> None:
    """Draining reports 503 on /ready while an in-flight request still completes."""
    app = secure_app(io.StringIO())
    entered, release = threading.Event(), threading.Event()  # cross the server's thread

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await asyncio.to_thread(release.wait, 10)
        return {"done": "yes"}

    server = live(app)
    state = app.state.flext

    async def scenario() -> list[object]:
        async with httpx2.AsyncClient(base_url=server.url, timeout=10) as client:
            request = asyncio.create_task(client.get("/slow"))
            assert await asyncio.to_thread(entered.wait, 10)
            state.begin_drain()
            ready = await client.get("/ready")
            server.server.should_exit = True  # uvicorn stops accepting, waits for /slow
            release.set()
            done = await request
            return [ready.status_code, ready.json()["output"], done.json()["done"]]

    assert asyncio.run(scenario()) == [503, "draining", "yes"]


async def test_rate_limit_applies_before_handler() -> None:
    """A refused request never reaches the handler (API4: no work for refused calls)."""
    config = ServerConfig(rate_limit=ServerRateLimitConfig(default_limit="2/minute"))
    app = secure_app(io.StringIO(), config)
    async with serve(app) as client:
        statuses = [(await client.get("/hello")).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert app.state.calls == ["hello", "hello"]
