"""A tracer that raises never fails the call it traces.

OpenTelemetry's SDK calls the application's span processors (``on_start``,
``on_end``) and propagators without a guard: one that raised turned a call the server
had answered 200 into ``PLUGIN_ERROR``. Now the failure is logged (``tracing.failed``,
naming the operation) and the call's outcome is the server's. Checked against a real
aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from flext_api.client import FlextApiClient
from flext_api.client.observability import TracingPlugin
from tests.unit.observability.logcapture import LogCapture

pytestmark = pytest.mark.integration


class RaisingProcessor(SpanProcessor):
    """A span processor that raises in ``on_start`` or ``on_end``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.where == "on_start":
            raise RuntimeError("processor on_start failed")

    def on_end(self, span: ReadableSpan) -> None:
        if self.where == "on_end":
            raise RuntimeError("processor on_end failed")


class RaisingPropagator(TextMapPropagator):
    """A propagator whose ``inject`` writes one header, then raises."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return Context() if context is None else context

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        setter.set(carrier, "x-half-written", "1")
        raise RuntimeError("propagator inject failed")

    @property
    def fields(self) -> set[str]:
        return {"x-half-written"}


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server on 127.0.0.1 that answers 200 and records each request's headers."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


@pytest.fixture
def provider() -> Iterator[Any]:
    """A local tracer provider, shut down after the test (the global one is untouched)."""
    made: list[TracerProvider] = []

    def make(processor: SpanProcessor | None = None) -> TracerProvider:
        tp = TracerProvider()
        if processor is not None:
            tp.add_span_processor(processor)
        made.append(tp)
        return tp

    yield make
    for tp in made:
        tp.shutdown()


@pytest.mark.parametrize(
    ("where", "operations"),
    [("on_start", {"start_call", "start_attempt"}), ("on_end", {"finish"})],
)
async def test_span_processor_that_raises_does_not_fail_the_call(
    upstream: tuple[str, list[dict[str, str]]],
    provider: Any,
    json_logs: LogCapture,
    where: str,
    operations: set[str],
) -> None:
    """A processor raising in ``on_start`` / ``on_end``: the call returns the server's
    200, sent once, and each failed operation is logged as ``tracing.failed``."""
    url, seen = upstream
    plugin = TracingPlugin(tracer_provider=provider(RaisingProcessor(where)))
    async with FlextApiClient(url, plugins=[plugin], default_plugins=False) as client:
        result = await client.get("/traced")
    assert result.is_success, result.exception
    assert result.value.status_code == 200
    assert len(seen) == 1
    failed = json_logs.events("tracing.failed")
    assert {record["operation"] for record in failed} == operations
    assert all(record["level"] == "error" for record in failed)
    assert all(f"processor {where} failed" in record["exception"] for record in failed)


async def test_propagator_that_raises_does_not_fail_the_call(
    upstream: tuple[str, list[dict[str, str]]], provider: Any, json_logs: LogCapture
) -> None:
    """A propagator raising in ``inject``: the call succeeds, sent once, and nothing the
    propagator half-wrote reaches the server."""
    url, seen = upstream
    plugin = TracingPlugin(tracer_provider=provider(), propagator=RaisingPropagator())
    async with FlextApiClient(url, plugins=[plugin], default_plugins=False) as client:
        result = await client.get("/traced")
    assert result.is_success, result.exception
    [headers] = seen
    assert "x-half-written" not in headers
    assert [r["operation"] for r in json_logs.events("tracing.failed")] == ["inject"]
