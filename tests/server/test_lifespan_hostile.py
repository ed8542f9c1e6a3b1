"""Hostile lifespan cases: an app started twice, a resource that will not open, a
shutdown handler that fails."""

from __future__ import annotations

import io

import pytest

from tests.server.conftest import Build
from tests.server.helpers import records, serve
from tests.server.test_lifespan import AsyncCM, BadEnter


async def test_app_started_again_is_ready_again(build: Build) -> None:
    """A second start-up (a second TestClient block on one app) answers /ready 200; it
    stayed 503 "draining" forever after the first shutdown."""
    app = build()
    async with serve(app) as client:
        assert (await client.get("/ready")).status_code == 200
    async with serve(app, lifespan=False) as client:
        between = await client.get("/ready")
    async with serve(app) as client:
        again = await client.get("/ready")
    assert (between.status_code, between.json()["output"]) == (503, "starting")
    assert again.status_code == 200
    assert app.state.flext.ready is False  # shut down again


async def test_drain_begun_before_start_up_is_kept(build: Build) -> None:
    """begin_drain() before start-up (a signal during start) is not undone by it."""
    app = build()
    app.state.flext.begin_drain()
    async with serve(app) as client:
        ready = await client.get("/ready")
    assert (ready.status_code, ready.json()["output"]) == (503, "draining")


async def test_resource_failing_to_open_is_named(build: Build) -> None:
    """The start-up error says which resource failed; the ones before it are closed."""
    events: list[str] = []
    app = build(resources=[AsyncCM("a", events), BadEnter(), AsyncCM("c", events)])
    with pytest.raises(ConnectionError, match="cannot open") as err:
        async with serve(app):
            pass
    notes = getattr(err.value, "__notes__", [])
    assert any("while opening resource BadEnter" in note for note in notes)
    assert events == ["open a", "close a"]


async def test_failing_shutdown_handler_does_not_skip_the_others(
    build: Build, log_stream: io.StringIO
) -> None:
    """Every shutdown handler runs; each failure is logged and the first is raised."""
    events: list[str] = []
    app = build(resources=[AsyncCM("r", events)])

    async def first() -> None:
        events.append("first")
        raise RuntimeError("first failed")

    def second() -> None:
        events.append("second")
        raise ValueError("second failed")

    async def third() -> None:
        events.append("third")

    app.router.on_shutdown.extend([first, second, third])
    with pytest.raises(RuntimeError, match="first failed"):
        async with serve(app):
            pass
    assert events == ["open r", "first", "second", "third", "close r"]
    failed = records(log_stream, "shutdown handler failed")
    assert [r["handler"] for r in failed] == [
        f"{first.__qualname__}",
        f"{second.__qualname__}",
    ]
