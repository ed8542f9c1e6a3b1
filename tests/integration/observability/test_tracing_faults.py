"""Traces of real calls: spans per attempt, traceparent and request ID upstream."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flext_api import RetryConfig
from flext_api._context import request_context
from flext_api.client import FlextApiClient
from flext_api.client.observability import TracingPlugin
from flext_api.client.plugins import RetryPlugin
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

INBOUND = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A local tracer provider exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_call_retried_twice_has_three_attempt_spans_and_upstream_traceparents(
    fault: FaultServer, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """1 call span, 3 attempt spans (resend 0, 1, 2); each attempt's traceparent arrives."""
    provider, memory = exporter
    retry = RetryPlugin(RetryConfig(max_retries=2, budget_ratio=None), clock=FakeClock())
    plugins = [TracingPlugin(provider), retry]
    async with FlextApiClient(fault.url, plugins=plugins, default_plugins=False) as client:
        assert (await client.get("/flaky/tr1/2/503")).is_success
    spans = memory.get_finished_spans()
    (call,) = [s for s in spans if "http.request.resend_count" not in (s.attributes or {})]
    attempts = sorted(
        (s for s in spans if s is not call),
        key=lambda s: s.attributes["http.request.resend_count"],  # type: ignore[index,arg-type,return-value]
    )
    assert [s.attributes["http.request.resend_count"] for s in attempts] == [0, 1, 2]  # type: ignore[index]
    assert {s.parent.span_id for s in attempts} == {call.context.span_id}  # type: ignore[union-attr]
    assert call.attributes["server.port"] == fault.port  # type: ignore[index]
    seen = [r.headers["traceparent"] for r in fault.requests_to("/flaky/tr1/2/503")]
    assert seen == [
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{int(s.context.trace_flags):02x}"
        for s in attempts
    ]


async def test_server_request_context_reaches_the_upstream(
    fault: FaultServer, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """Inside a server request, the upstream sees its X-Request-ID and its trace."""
    provider, memory = exporter
    plugins = [TracingPlugin(provider)]
    async with FlextApiClient(fault.url, plugins=plugins, default_plugins=False) as client:
        with request_context("req-abc-1", INBOUND):
            assert (await client.get("/echo")).is_success
    (sent,) = fault.requests_to("/echo")
    assert sent.headers["x-request-id"] == "req-abc-1"
    trace_id = sent.headers["traceparent"].split("-")[1]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert sent.headers["traceparent"] != INBOUND  # our attempt span is the new parent
    assert len(memory.get_finished_spans()) == 2


async def test_flext_server_handler_propagates_to_its_outgoing_calls(
    fault: FaultServer, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A handler of create_fastapi_app calling out: request ID and trace continue."""
    pytest.importorskip("fastapi")
    from flext_api.server import create_fastapi_app
    from flext_api.server._logging import make_json_logger
    from flext_api.transports._asgi import ASGITransport

    provider, _ = exporter
    app = create_fastapi_app(logger=make_json_logger(io.StringIO()))
    outgoing = FlextApiClient(fault.url, plugins=[TracingPlugin(provider)], default_plugins=False)

    @app.get("/proxy")
    async def proxy() -> dict[str, int]:
        result = await outgoing.get("/echo")
        return {"status": result.value.status_code}

    inbound = FlextApiClient(
        "http://testserver", transport=ASGITransport(app), default_plugins=False
    )
    async with inbound, outgoing:
        result = await inbound.get(
            "/proxy", headers={"X-Request-ID": "req-e2e-7", "traceparent": INBOUND}
        )
    assert result.value.json() == {"status": 200}
    (sent,) = fault.requests_to("/echo")
    assert sent.headers["x-request-id"] == "req-e2e-7"
    assert sent.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
