"""A logger that raises never fails the call it logs: observability must not change a
call's outcome (the tracing plugin already guarantees it). A structlog logger or
processor that raised turned a call the server had answered 200 into ``PLUGIN_ERROR``.
The failure is reported through the standard ``logging`` module (which never raises
into its caller), and the call returns the server's answer. Checked against a real
aiohttp server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from flext_api.client import FlextApiClient
from flext_api.client.observability import LoggingPlugin

pytestmark = pytest.mark.integration


class RaisingLogger:
    """A logger whose every method raises (a broken renderer or processor)."""

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            raise RuntimeError(f"renderer failed on {event}")

        return log


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query.get("status", "200")), text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("status", [200, 503])
async def test_a_logger_that_raises_does_not_fail_the_call(
    upstream: str, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    plugin = LoggingPlugin(logger=RaisingLogger())
    with caplog.at_level(logging.ERROR, logger="flext_api.client"):
        async with FlextApiClient(upstream, plugins=[plugin], default_plugins=False) as client:
            result = await client.get(f"/x?status={status}", retry=0, fail_on_http_error=False)
    assert result.is_success, result.error
    assert result.value.status_code == status
    failures = [r for r in caplog.records if r.name == "flext_api.client"]
    assert failures, "the logger's failure must be reported"
    assert all("renderer failed" in (r.exc_text or "") for r in failures)
    assert {r.getMessage() for r in failures} >= {
        "LoggingPlugin could not write http.client.attempt",
        "LoggingPlugin could not write http.client.request",
    }
