"""Slow requests: one warning with request ID, route template and duration, and a counter."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from fastapi import FastAPI

from flext_api.server import slow_request_threshold
from flext_api.server.middleware import SlowRequestMiddleware
from flext_api.testing import FakeClock
from tests.server.helpers import build_app, records, serve


def slow_app(stream: io.StringIO, clock: FakeClock, gate: asyncio.Event) -> FastAPI:
    """An app whose /items/{item_id} waits for ``gate``; the test moves the clock meanwhile."""
    app = build_app(stream=stream, slow_request_threshold=0.5, clock=clock)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> int:
        await gate.wait()
        return item_id

    @app.get("/export")
    @slow_request_threshold(30)
    async def export() -> str:
        await gate.wait()
        return "done"

    return app


async def request_while_clock_moves(
    app: FastAPI, clock: FakeClock, gate: asyncio.Event, path: str, seconds: float
) -> None:
    async with serve(app) as client:
        pending = asyncio.create_task(client.get(path, headers={"X-Request-ID": "slow-1"}))
        for _ in range(1000):  # until the handler is waiting on the gate
            await asyncio.sleep(0)
            if app.state.flext.in_flight:
                break
        clock.advance(seconds)
        gate.set()
        assert (await pending).status_code == 200


async def test_slow_request_logs_one_warning() -> None:
    """A request past the threshold logs one warning naming request ID, route, duration."""
    stream, clock, gate = io.StringIO(), FakeClock(), asyncio.Event()
    app = slow_app(stream, clock, gate)
    await request_while_clock_moves(app, clock, gate, "/items/7", 2.0)
    [warning] = records(stream, "slow request")
    assert warning["request_id"] == "slow-1"
    assert warning["route"] == "/items/{item_id}"
    assert warning["duration_ms"] == 2000.0
    assert warning["level"] == "warning"


async def test_slow_request_is_counted_in_metrics() -> None:
    """The slow request increments http_server_slow_requests_total for its route."""
    stream, clock, gate = io.StringIO(), FakeClock(), asyncio.Event()
    app = slow_app(stream, clock, gate)
    await request_while_clock_moves(app, clock, gate, "/items/7", 2.0)
    rendered = app.state.flext.metrics.render().decode()
    assert 'http_server_slow_requests_total{route="/items/{item_id}"} 1.0' in rendered


async def test_fast_request_logs_nothing() -> None:
    """A request under the threshold writes no slow-request record."""
    stream, clock, gate = io.StringIO(), FakeClock(), asyncio.Event()
    app = slow_app(stream, clock, gate)
    await request_while_clock_moves(app, clock, gate, "/items/7", 0.1)
    assert records(stream, "slow request") == []


async def test_route_threshold_overrides_the_default() -> None:
    """A route marked with its own threshold is not slow below it."""
    stream, clock, gate = io.StringIO(), FakeClock(), asyncio.Event()
    app = slow_app(stream, clock, gate)
    await request_while_clock_moves(app, clock, gate, "/export", 2.0)
    assert records(stream, "slow request") == []


def test_threshold_none_adds_no_layer() -> None:
    """slow_request_threshold=None leaves the slow-request middleware out."""
    app = build_app(stream=io.StringIO(), slow_request_threshold=None)
    layers: list[object] = [m.cls for m in app.user_middleware]
    assert SlowRequestMiddleware not in layers


async def test_non_http_scopes_pass_through() -> None:
    """The layer ignores lifespan and websocket scopes."""
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    layer = SlowRequestMiddleware(inner, threshold=0.0, logger=None)
    await layer({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_unmatched_request_over_threshold_logs_without_metrics() -> None:
    """A 404 past the threshold is logged as <unmatched>; no registry means no counter."""
    stream, clock = io.StringIO(), FakeClock()
    app = build_app(stream=stream, slow_request_threshold=0.0, clock=clock)
    app.state.flext.metrics = None
    async with serve(app) as client:
        assert (await client.get("/nowhere")).status_code == 404
    [warning] = records(stream, "slow request")
    assert warning["route"] == "<unmatched>"
