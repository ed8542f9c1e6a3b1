"""FlextContainer in an app: Depends(inject(T)), request scopes, lifespan, readiness."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response

from flext_api import FlextContainer
from flext_api.composition import Lifetime, inject
from tests.composition.seed_services import Cache, Config, Database, UserService
from tests.server.helpers import build_app, serve


class RequestLog:
    """A per-request service."""


def seed_container() -> FlextContainer:
    container = FlextContainer()
    container.register(
        Config, Config(database_url="postgresql://localhost/db", redis_url="redis://localhost")
    )
    container.register_factory(Database, Database)
    container.register_factory(Cache, Cache)
    container.register_factory(UserService, UserService)
    return container


async def test_seed_route_resolves_from_app_state() -> None:
    """The seed's route reads request.app.state.container.resolve(UserService)."""
    app = build_app(stream=io.StringIO(), container=seed_container())

    @app.get("/users/{user_id}")
    async def get_user(request: Request, response: Response, user_id: int) -> dict[str, object]:
        user_service = request.app.state.container.resolve(UserService)
        return {"id": user_id, "db": user_service.db.url}

    async with serve(app) as client:
        reply = await client.get("/users/7")
    assert reply.json() == {"id": 7, "db": "postgresql://localhost/db"}


async def test_inject_resolves_a_dependency() -> None:
    """Depends(inject(T)) hands the route the container's service."""
    container = seed_container()
    app = build_app(stream=io.StringIO(), container=container)

    @app.get("/db")
    async def db(service: Annotated[UserService, Depends(inject(UserService))]) -> str:
        return service.cache.url

    async with serve(app) as client:
        assert (await client.get("/db")).json() == "redis://localhost"


async def test_request_services_are_closed_after_each_request() -> None:
    """A request-lifetime generator factory is cleaned up once per request."""
    closed: list[str] = []

    async def make_log(config: Config) -> AsyncIterator[RequestLog]:
        yield RequestLog()
        closed.append(config.database_url)

    container = seed_container()
    container.register_factory(RequestLog, make_log, lifetime=Lifetime.REQUEST)
    app = build_app(stream=io.StringIO(), container=container)

    @app.get("/log")
    async def log(
        first: Annotated[RequestLog, Depends(inject(RequestLog))],
        again: Annotated[RequestLog, Depends(inject(RequestLog))],
    ) -> bool:
        return first is again

    async with serve(app) as client:
        assert (await client.get("/log")).json() is True
        assert (await client.get("/log")).json() is True
    assert closed == ["postgresql://localhost/db"] * 2


async def test_container_closes_with_the_app() -> None:
    """The app's shutdown runs the singletons' cleanups."""
    closed: list[str] = []

    async def make_db(config: Config) -> AsyncIterator[Database]:
        yield Database(config)
        closed.append("db")

    container = seed_container()
    container.register_factory(Database, make_db)
    app = build_app(stream=io.StringIO(), container=container)

    @app.get("/db")
    async def db(service: Annotated[Database, Depends(inject(Database))]) -> str:
        return service.url

    async with serve(app) as client:
        await client.get("/db")
        assert closed == []
    assert closed == ["db"]


async def test_failing_ping_makes_ready_503() -> None:
    """A service whose ping returns False turns /ready to 503 with its check named."""
    container = seed_container()
    container.register_factory(Cache, Cache, ping=lambda cache: cache.url.startswith("memcached"))
    app = build_app(stream=io.StringIO(), container=container)
    async with serve(app) as client:
        reply = await client.get("/ready")
    assert reply.status_code == 503
    assert reply.json()["checks"]["Cache"] == [{"status": "fail", "output": "unhealthy"}]


async def test_inject_without_container_is_a_500_problem() -> None:
    """A route injecting from an app without a container fails with a clear log."""
    stream = io.StringIO()
    app = build_app(stream=stream)

    @app.get("/x")
    async def x(service: Annotated[UserService, Depends(inject(UserService))]) -> str:
        return "unreachable"

    async with serve(app) as client:
        reply = await client.get("/x")
    assert reply.status_code == 500
    assert "has no FlextContainer" in stream.getvalue()
