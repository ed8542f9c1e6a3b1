"""Liveness, readiness checks with timeouts, and readiness during start-up and drain."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from flext_api import ServerConfig
from flext_api._server_config import HealthConfig
from flext_api.server import create_fastapi_app, make_json_logger
from flext_api.server._health import ReadinessCheck, ReadinessChecks
from tests.server.conftest import Build
from tests.server.helpers import records, serve
from tests.server.live import LiveServer, raw_http, response_headers, wait_for_records


async def _ok() -> bool:
    return True


async def _false() -> bool:
    return False


async def _raises() -> None:
    raise ConnectionError("db down at 10.0.0.5")


async def _hangs() -> None:
    await asyncio.sleep(3600)


async def test_liveness(build: Build) -> None:
    """/health answers {"status": "pass"} as application/health+json."""
    async with serve(build()) as client:
        response = await client.get("/health")
    assert response.headers["content-type"] == "application/health+json"
    assert response.json() == {"status": "pass"}


async def test_ready_with_passing_checks(build: Build) -> None:
    """All checks passing: 200 with each check listed."""
    app = build(readiness_checks={"db": _ok})
    app.state.flext.add_readiness_check("cache", _ok)
    async with serve(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "pass",
        "checks": {"db": [{"status": "pass"}], "cache": [{"status": "pass"}]},
    }


@pytest.mark.parametrize(("check", "output"), [(_false, "unhealthy"), (_raises, "error")])
async def test_failing_check_is_503(
    build: Build, log_stream: io.StringIO, check: object, output: str
) -> None:
    """A check returning False or raising makes /ready 503; details stay in the log."""
    app = build(readiness_checks={"ok": _ok, "db": check})
    async with serve(app) as client:
        response = await client.get("/ready")
        live = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["db"] == [{"status": "fail", "output": output}]
    assert "10.0.0.5" not in response.text
    assert live.status_code == 200


async def test_hanging_check_times_out(build: Build, log_stream: io.StringIO) -> None:
    """A hanging check fails /ready within check_timeout; liveness is unaffected."""
    app = build(
        ServerConfig(health=HealthConfig(check_timeout=0.2)), readiness_checks={"db": _hangs}
    )
    async with serve(app) as client:
        started = time.monotonic()
        response = await client.get("/ready")
        elapsed = time.monotonic() - started
        live = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["db"] == [{"status": "fail", "output": "timed out"}]
    assert elapsed < 30.0  # the hanging check was not waited out (a generous bound)
    assert live.status_code == 200
    assert records(log_stream, "readiness check timed out")


async def test_check_ignoring_cancellation_does_not_hold_probe() -> None:
    """A check that swallows cancellation is abandoned, and its result retrieved later."""
    release = asyncio.Event()

    async def stubborn() -> bool:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()
            raise RuntimeError("late failure") from None
        return True

    checks = ReadinessChecks(timeout=0.05, logger=make_json_logger(io.StringIO()))
    checks.add("stubborn", stubborn)
    healthy, _ = await checks.run()
    assert healthy is False
    stragglers = set(checks._stragglers)
    assert len(stragglers) == 1
    release.set()
    await asyncio.wait(stragglers)  # its done-callback ran first: forgotten, error retrieved
    assert checks._stragglers == set()


async def _cancelled() -> bool:
    # What a closing pool's ping does: await a future another task cancels.
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.cancel)
    return await future


def _sync_down() -> bool:
    return False


def _sync_up() -> bool:
    return True


class _NoClientYet:
    client: Any = None


@pytest.mark.parametrize(
    ("check", "output"),
    [
        (_cancelled, "error"),
        (_sync_down, "unhealthy"),
        (lambda: _NoClientYet.client.ping(), "error"),
    ],
    ids=["ends-cancelled", "sync-false", "raises-before-awaitable"],
)
async def test_any_failing_check_is_503_not_500(
    build: Build, log_stream: io.StringIO, check: ReadinessCheck, output: str
) -> None:
    """A check ending cancelled, a sync one returning False or one raising before it
    makes a coroutine is a failed check: 503 with the others still reported."""
    app = build(readiness_checks={"ok": _ok, "db": check})
    async with serve(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "ok": [{"status": "pass"}],
        "db": [{"status": "fail", "output": output}],
    }


async def test_sync_check_passes(build: Build) -> None:
    """A plain function returning True is a passing check (add() accepts it)."""
    app = build(readiness_checks={"db": _sync_up})
    app.state.flext.add_readiness_check("cache", lambda: _ok())
    async with serve(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"db": [{"status": "pass"}], "cache": [{"status": "pass"}]}


def test_cancelled_check_over_uvicorn_is_logged_503(
    build: Build, log_stream: io.StringIO, live: Callable[[FastAPI], LiveServer]
) -> None:
    """Over a real socket a cancelled check gives a 503 health document, logged as 503."""
    server = live(build(readiness_checks={"db": _cancelled}))
    raw = raw_http(server.port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers = response_headers(raw)
    assert (status, dict(headers)["content-type"]) == (503, "application/health+json")
    access = [r for r in wait_for_records(log_stream, 1) if r.get("event") == "request"]
    assert [r["status"] for r in access] == [503]
    assert records(log_stream, "readiness check failed")[0]["check"] == "db"


async def test_not_ready_before_startup(build: Build) -> None:
    """Without start-up (no lifespan) /ready is 503 "starting"."""
    async with serve(build(), lifespan=False) as client:
        response = await client.get("/ready")
    assert (response.status_code, response.json()) == (
        503,
        {"status": "fail", "output": "starting"},
    )


async def test_not_ready_while_draining(build: Build) -> None:
    """Once the drain begins, /ready is 503 and /health still 200."""
    app = build()
    async with serve(app) as client:
        app.state.flext.begin_drain()
        ready = await client.get("/ready")
        live = await client.get("/health")
    assert (ready.status_code, ready.json()["output"], live.status_code) == (503, "draining", 200)


def test_duplicate_or_invalid_checks_rejected() -> None:
    """A taken name is a ValueError; a non-callable a TypeError."""
    app = create_fastapi_app(logger=make_json_logger(io.StringIO()), readiness_checks={"db": _ok})
    with pytest.raises(ValueError, match="already registered"):
        app.state.flext.add_readiness_check("db", _ok)
    with pytest.raises(TypeError, match="must be a callable"):
        app.state.flext.add_readiness_check("x", "not callable")


async def test_probe_paths_configurable(build: Build) -> None:
    """liveness_path and readiness_path move the endpoints; only GET/HEAD allowed."""
    config = ServerConfig(health=HealthConfig(liveness_path="/livez", readiness_path="/readyz"))
    async with serve(build(config)) as client:
        live = await client.get("/livez")
        ready = await client.head("/readyz")
        post = await client.post("/livez")
    assert (live.status_code, ready.status_code) == (200, 200)
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
