"""Lifespan: resources opened and closed in reverse, user lifespan, graceful drain."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request

from flext_api import ServerConfig
from flext_api._server_config import HealthConfig
from tests.server.conftest import Build
from tests.server.helpers import records, serve
from tests.server.live import LiveServer


class AsyncCM:
    """An async context manager resource."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    async def __aenter__(self) -> AsyncCM:
        self.events.append(f"open {self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.events.append(f"close {self.name}")


class AClose:
    """A resource with an async aclose()."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    async def aclose(self) -> None:
        self.events.append(f"aclose {self.name}")


class SyncClose:
    """A resource with a sync close()."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    def close(self) -> None:
        self.events.append(f"close {self.name}")


class AsyncClose(SyncClose):
    """A resource whose close() is a coroutine (aiohttp.ClientSession style)."""

    async def close(self) -> None:  # type: ignore[override]
        self.events.append(f"async close {self.name}")


class Broken:
    """A resource whose close fails."""

    async def aclose(self) -> None:
        raise RuntimeError("close failed")


class BadEnter:
    """A resource that cannot be opened."""

    async def __aenter__(self) -> None:
        raise ConnectionError("cannot open")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_resources_open_in_order_close_in_reverse(build: Build) -> None:
    """Context managers are entered at start; everything closes last-first at shutdown."""
    events: list[str] = []
    app = build(resources=[AsyncCM("a", events), AClose("b", events), SyncClose("c", events)])
    app.state.flext.add_resource(AsyncClose("d", events))
    async with serve(app):
        assert events == ["open a"]
        events.append("serving")
    assert events == ["open a", "serving", "async close d", "close c", "aclose b", "close a"]


async def test_resource_added_after_start_is_closed_not_opened(build: Build) -> None:
    """A resource registered while serving is only closed at shutdown."""
    events: list[str] = []
    app = build()
    async with serve(app):
        added = app.state.flext.add_resource(AsyncCM("late", events))
        assert isinstance(added, AsyncCM)
        app.state.flext.add_resource(SyncClose("late2", events))
    assert events == ["close late2", "close late"]


async def test_failing_close_is_logged_and_others_close(
    build: Build, log_stream: io.StringIO
) -> None:
    """One failing close does not stop the others; it is logged with its type."""
    events: list[str] = []
    app = build(resources=[AClose("first", events), Broken()])
    async with serve(app):
        pass
    assert events == ["aclose first"]
    assert records(log_stream, "resource close failed")[0]["resource"] == "Broken"


async def test_failing_open_closes_what_was_opened(build: Build) -> None:
    """If a resource cannot open, those already open are closed and start-up fails."""
    events: list[str] = []
    app = build(resources=[AsyncCM("a", events), BadEnter()])
    with pytest.raises(ConnectionError):
        async with app.router.lifespan_context(app):
            pass
    assert events == ["open a", "close a"]


def test_non_resource_rejected(build: Build) -> None:
    """An object with no way to close it is a TypeError."""
    with pytest.raises(TypeError, match="is not a resource"):
        build(resources=[object()])


async def test_user_lifespan_runs_inside(build: Build) -> None:
    """The user's lifespan starts after resources and ends before they close."""
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("user start")
        yield {"token": 1}
        events.append("user stop")

    app = build(resources=[AsyncCM("res", events)], lifespan=lifespan)
    async with serve(app) as client:
        assert (await client.get("/ready")).status_code == 200
    assert events == ["open res", "user start", "user stop", "close res"]


def test_user_lifespan_state_reaches_requests(
    build: Build, live: Callable[[FastAPI], LiveServer]
) -> None:
    """What the user's lifespan yields is request.state under a real server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"token": 1}

    app = build(lifespan=lifespan)

    @app.get("/token")
    async def token(request: Request) -> dict[str, int]:
        return {"token": request.state.token}

    server = live(app)
    assert httpx2.get(f"{server.url}/token").json() == {"token": 1}


async def test_drain_waits_for_in_flight_requests(build: Build) -> None:
    """Shutdown marks not-ready, then waits for the in-flight request to finish."""
    app = build()
    release, entered = asyncio.Event(), asyncio.Event()
    events: list[str] = []

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        events.append("request done")
        return {}

    async with serve(app) as client:
        request = asyncio.create_task(client.get("/slow"))
        await entered.wait()
        assert app.state.flext.in_flight == 1
        drain = asyncio.create_task(app.state.flext.drain())
        await asyncio.sleep(0.01)
        assert app.state.flext.draining and not drain.done()
        release.set()
        assert await drain is True
        events.append("drained")
        assert (await request).status_code == 200
    assert events == ["request done", "drained"]


async def test_drain_gives_up_after_timeout(build: Build, log_stream: io.StringIO) -> None:
    """A request that outlives drain_timeout is left, and the drain says so."""
    app = build(ServerConfig(health=HealthConfig(drain_timeout=0.05)))
    state = app.state.flext
    state.request_started()
    assert await state.drain() is False
    state.request_finished()
    assert records(log_stream, "shutdown drain timed out")[0]["in_flight"] == 1
    assert repr(state) == "<FlextServerState [draining | 0 in flight | checks: -]>"


def test_state_repr_and_ready(build: Build) -> None:
    """The state's repr shows phase, in-flight count and checks."""

    async def db() -> None:
        return None

    state = build(readiness_checks={"db": db}).state.flext
    assert repr(state) == "<FlextServerState [starting | 0 in flight | checks: db]>"
    assert state.ready is False
