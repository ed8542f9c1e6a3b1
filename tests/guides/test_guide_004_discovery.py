"""Seed 004 (Nexios "Advanced Features"): service discovery and ServiceClient, for real.

The seed's app registers itself at startup and starts the health checks; its
``/protected`` route asks the ``auth`` service (found through the registry) to verify
the caller's token, and answers 401 when that fails. The auth service is a real app
served by uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from flext_api.discovery import ServiceClient, ServiceInstance, ServiceRegistry
from flext_api.server import create_fastapi_app
from tests.guides.seed import s004_discovery as guide
from tests.server.helpers import serve
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

ADA = {"id": 7, "name": "ada"}


def _auth_service(calls: list[str]) -> FastAPI:
    app = create_fastapi_app()

    @app.post("/verify")
    async def verify(request: Request) -> JSONResponse:
        token = (await request.json())["token"]
        calls.append(token)
        if token != "Bearer good":
            return JSONResponse({"error": "bad token"}, status_code=401)
        return JSONResponse(ADA)

    return app


@pytest.fixture
def auth_calls() -> list[str]:
    return []


@pytest.fixture
def auth_url(auth_calls: list[str]) -> Iterator[str]:
    server = LiveServer(_auth_service(auth_calls)).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def clients() -> AsyncIterator[tuple[ServiceRegistry, ServiceClient]]:
    registry, auth_client = guide.make_clients()
    async with registry, auth_client:
        yield registry, auth_client


async def _register_auth(registry: ServiceRegistry, url: str) -> None:
    instance = ServiceInstance(id="auth-1", name="auth", url=url)
    assert (await registry.register("auth", instance)).is_success


def _app(registry: ServiceRegistry, auth_client: ServiceClient, self_url: str) -> FastAPI:
    with pytest.warns(DeprecationWarning, match="on_event is deprecated"):
        app: FastAPI = guide.build_app(registry, auth_client, self_url)
    return app


async def test_protected_route_returns_the_user_the_auth_service_verified(
    clients: tuple[ServiceRegistry, ServiceClient], auth_url: str, auth_calls: list[str]
) -> None:
    """With an auth instance registered, a good token gets {"user": ...} from /verify."""
    registry, auth_client = clients
    await _register_auth(registry, auth_url)
    async with serve(_app(registry, auth_client, auth_url)) as client:
        response = await client.get("/protected", headers={"Authorization": "Bearer good"})
    assert (response.status_code, response.json()) == (200, {"user": ADA})
    assert auth_calls == ["Bearer good"]


async def test_a_token_the_auth_service_refuses_is_401(
    clients: tuple[ServiceRegistry, ServiceClient], auth_url: str, auth_calls: list[str]
) -> None:
    """A token /verify answers 401 to makes /protected answer 401 with the error."""
    registry, auth_client = clients
    await _register_auth(registry, auth_url)
    async with serve(_app(registry, auth_client, auth_url)) as client:
        response = await client.get("/protected", headers={"Authorization": "Bearer bad"})
    assert response.status_code == 401
    assert "401" in response.json()["error"]
    assert auth_calls == ["Bearer bad"]


async def test_no_auth_instance_is_401_naming_the_service(
    clients: tuple[ServiceRegistry, ServiceClient], auth_url: str
) -> None:
    """Without an auth instance (or after unregister) the route answers 401 naming 'auth'."""
    registry, auth_client = clients
    async with serve(_app(registry, auth_client, auth_url)) as client:
        before = await client.get("/protected", headers={"Authorization": "Bearer good"})
        await _register_auth(registry, auth_url)
        assert (await registry.unregister("auth", "auth-1")).is_success
        after = await client.get("/protected", headers={"Authorization": "Bearer good"})
    for response in (before, after):
        assert response.status_code == 401
        assert "'auth'" in response.json()["error"]


async def test_startup_registers_the_service_and_starts_health_checks(
    clients: tuple[ServiceRegistry, ServiceClient], auth_url: str
) -> None:
    """Startup registers an 'api' instance, get_instance finds it; the checks end at close."""
    registry, auth_client = clients
    app = _app(registry, auth_client, auth_url)
    async with serve(app):
        picked = await registry.get_instance("api")
        assert (picked.value.name, picked.value.url) == ("api", auth_url)
        task: asyncio.Task[None] = app.state.health_task
        assert not task.done()
    await registry.aclose()
    async with asyncio.timeout(10):
        await task
