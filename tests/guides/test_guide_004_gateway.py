"""Seed 004 (Nexios "Advanced Features"): the API gateway mini-project, as a gateway YAML.

The seed's promises, checked on a real gateway and real services on 127.0.0.1: 429
past 100 requests a minute from one client, 401 without a valid token on ``POST
/orders`` (and the user's id reaching the order service with one), ``/users/{id}`` and
``/products`` answered from the cache the second time, a problem answer when the
service is down, the WebSocket proxy, and ``/health`` / ``/metrics`` (admin port).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from flext_api.gateway import GatewayConfig
from tests.guides.seed import s004_gateway as guide
from tests.integration.gateway.conftest import LiveGateway
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

SECRET = "seed-004-gateway-secret-of-32-bytes!"


@pytest.fixture
def services() -> Iterator[LiveServer]:
    server = LiveServer(guide.services_app()).start()
    try:
        yield server
    finally:
        server.stop()


def _gateway(upstream: str) -> Iterator[LiveGateway]:
    config = GatewayConfig.model_validate(guide.gateway_config(upstream, SECRET))
    gateway = LiveGateway(config, None).start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def gateway(services: LiveServer) -> Iterator[LiveGateway]:
    yield from _gateway(services.url)


def _hits(services: LiveServer) -> dict[str, int]:
    hits: dict[str, int] = services.app.state.hits
    return hits


async def _get(url: str, **options: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(url, **options) as response:
        return response.status, dict(response.headers), await response.text()


def test_the_yaml_passes_the_gateway_check(tmp_path: Path) -> None:
    """The config is one `flext-api gateway check` accepts (every key known and valid)."""
    from flext_api.gateway import load_config

    path = tmp_path / "gateway.yaml"
    path.write_text(guide.GATEWAY_YAML.format(upstream="http://127.0.0.1:9001", jwt_secret=SECRET))
    assert load_config(path).is_success


async def test_requests_past_100_a_minute_are_429(
    gateway: LiveGateway, services: LiveServer
) -> None:
    """One client gets 100 answers a minute (RateLimit(100, 60)), then 429 Rate limit.

    The window slides on the wall clock: one straddling a minute may let a request or
    two more through, never fewer than 100.
    """
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        while 429 not in statuses and len(statuses) < 110:
            async with session.get(f"{gateway.url}/users/{len(statuses)}") as response:
                statuses.append(response.status)
                headers = response.headers
    assert statuses[:100] == [200] * 100
    assert statuses[-1] == 429
    assert headers["X-Gateway-Reason"] == "rate_limited"
    assert "Retry-After" in headers


async def test_orders_without_a_token_is_401(gateway: LiveGateway, services: LiveServer) -> None:
    """POST /orders without Authorization, or with a bad JWT, is 401; the service is not called."""
    bad = jwt.encode({"sub": "ada"}, "another-secret-that-is-32-bytes-long!", algorithm="HS256")
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": f"Bearer {bad}"}):
            async with session.post(
                f"{gateway.url}/orders", json={"items": [1]}, headers=headers
            ) as response:
                assert response.status == 401
                assert response.headers["X-Gateway-Reason"] == "unauthorized"
    assert _hits(services).get("orders", 0) == 0


async def test_orders_with_a_token_reach_the_order_service_as_the_user(
    gateway: LiveGateway, services: LiveServer
) -> None:
    """A JWT signed with jwt_secret (HS256) passes; the service answers 201 for its subject."""
    # The gateway requires ``exp`` (AuthConfig.jwt_required_claims); the seed checked none.
    token = jwt.encode({"sub": "ada", "exp": time.time() + 3600}, SECRET, algorithm="HS256")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/orders",
            json={"items": [1, 2]},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        body = await response.json()
    assert (response.status, body) == (201, {"items": [1, 2], "user_id": "ada"})


@pytest.mark.parametrize(("path", "hit"), [("/users/42", "users"), ("/products", "products")])
async def test_a_cached_route_answers_the_second_call_without_the_service(
    gateway: LiveGateway, services: LiveServer, path: str, hit: str
) -> None:
    """The second GET is a cache HIT: same body, and the service was called once."""
    first = await _get(f"{gateway.url}{path}")
    second = await _get(f"{gateway.url}{path}")
    assert (first[0], second[0]) == (200, 200)
    assert second[2] == first[2]
    assert _hits(services)[hit] == 1


async def test_a_service_that_is_down_is_a_gateway_problem(services: LiveServer) -> None:
    """With the service's only instance gone, the gateway answers its own 502 problem.

    (The seed's route_request answered 500 when the forward raised, 503 only once its
    30 s health check had marked every instance unhealthy.)
    """
    url = services.url
    services.stop()
    for gateway in _gateway(url):
        status, headers, _ = await _get(f"{gateway.url}/users/1")
        assert status == 502, (status, headers)
        assert headers["x-gateway-reason"] == "connect_failure"
        assert headers["Content-Type"] == "application/problem+json"


async def test_the_websocket_proxy_forwards_both_ways(gateway: LiveGateway) -> None:
    """/ws/{service} is proxied: a text sent through the gateway comes back from the service."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{gateway.url}/ws/chat") as ws,
    ):
        await ws.send_str("hello")
        reply = await ws.receive_str()
        await ws.send_str("again")
        again = await ws.receive_str()
    assert (reply, again) == ("chat: hello", "chat: again")


async def test_health_and_metrics(gateway: LiveGateway, services: LiveServer) -> None:
    """/health shows each service up; /metrics is Prometheus text with the requests counted."""
    await _get(f"{gateway.url}/products")
    status, _, health = await _get(f"{gateway.admin_url}/health")
    assert status == 200, health
    for name in ("user-service", "product-service", "order-service"):
        assert name in health
    status, headers, metrics = await _get(f"{gateway.admin_url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert "gateway_requests_total" in metrics
    assert 'route="products"' in metrics
