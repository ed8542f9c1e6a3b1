"""TracingPlugin: a CLIENT span per call, a child per attempt, W3C context sent."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from flext_api import BreakerConfig, FlextResult, HttpRequest, HttpResponse, RetryConfig
from flext_api._context import request_context
from flext_api.client import CallNext, FlextApiClient
from flext_api.client.auth import BearerAuth
from flext_api.client.observability import TracingPlugin
from flext_api.client.plugins import CircuitBreakerPlugin, RetryPlugin
from flext_api.resilience import RateLimitWaited
from flext_api.resilience._events import Emitter
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport

RETRY = RetryConfig(max_retries=2, budget_ratio=None, seed=1)
SECRET = "sekrit-Zq8v-0002"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Finished spans, in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A local tracer provider (the global one is never touched)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def _client(
    tracing: TracingPlugin,
    handler: Callable[[HttpRequest], Any] = lambda r: HttpResponse(200),
    plugins: Sequence[object] = (),
    **kwargs: Any,
) -> tuple[FlextApiClient, MockTransport]:
    transport = MockTransport(handler)
    client = FlextApiClient(
        "http://api.test:8080",
        transport=transport,
        plugins=[tracing, *plugins],  # type: ignore[list-item]
        default_plugins=False,
        **kwargs,
    )
    return client, transport


def _split(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    parents = [s for s in spans if "http.request.resend_count" not in (s.attributes or {})]
    assert len(parents) == 1, spans
    return parents[0], [s for s in spans if s is not parents[0]]


async def test_retried_twice_gives_one_parent_and_three_attempts(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Two retries: one call span and three attempt spans with resend counts 0, 1, 2."""
    codes = iter([503, 503, 200])
    clock = FakeClock()
    client, _ = _client(
        TracingPlugin(provider),
        lambda r: HttpResponse(next(codes)),
        [RetryPlugin(RETRY, clock=clock)],
    )
    assert (await client.get("/items")).is_success
    parent, attempts = _split(exporter.get_finished_spans())
    assert [a.attributes["http.request.resend_count"] for a in attempts] == [0, 1, 2]  # type: ignore[index]
    assert all(
        a.parent is not None and a.parent.span_id == parent.context.span_id for a in attempts
    )
    assert {s.kind for s in (parent, *attempts)} == {SpanKind.CLIENT}
    assert {s.name for s in (parent, *attempts)} == {"GET"}
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 503, 200]  # type: ignore[index]
    assert attempts[0].attributes["error.type"] == "503"  # type: ignore[index]
    assert [e.name for e in parent.events] == ["http.client.retry", "http.client.retry"]
    assert parent.events[0].attributes["flext_api.delay"] >= 0  # type: ignore[index,operator]


async def test_call_span_has_semconv_attributes(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Method, server address and port, redacted url.full and the status code."""
    client, _ = _client(TracingPlugin(provider))
    await client.get("/p", params={"access_token": SECRET, "page": 2})
    parent, _ = _split(exporter.get_finished_spans())
    assert dict(parent.attributes or {}) == {
        "http.request.method": "GET",
        "server.address": "api.test",
        "server.port": 8080,
        "url.full": "http://api.test:8080/p?access_token=[REDACTED]&page=2",
        "http.response.status_code": 200,
    }
    assert parent.status.status_code is StatusCode.UNSET


async def test_each_attempt_sends_its_own_traceparent(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The traceparent sent names the attempt span; the caller's request is untouched."""
    client, transport = _client(TracingPlugin(provider))
    request = client.build_request("GET", "/x")
    await client.send(request)
    _, (attempt,) = _split(exporter.get_finished_spans())
    sent = transport.requests[0].headers["traceparent"]
    ctx = attempt.context
    assert sent == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert "traceparent" not in request.headers


async def test_failure_sets_error_type_and_scrubbed_status(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A transport error: error.type is the code, the description has no token."""

    def refused(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError(f"no, {request.headers['authorization']}\r\n")

    client, _ = _client(TracingPlugin(provider), refused, auth=BearerAuth(SECRET))
    await client.get("/x")
    parent, (attempt,) = _split(exporter.get_finished_spans())
    for span in (parent, attempt):
        assert span.attributes["error.type"] == "CONNECT_ERROR"  # type: ignore[index]
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is not None
        assert SECRET not in span.status.description
        assert "\r" not in span.status.description


async def test_unknown_method_span_is_named_http(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A method outside the known set: name HTTP, method _OTHER, original kept."""
    client, _ = _client(TracingPlugin(provider))
    await client.request("PURGE", "/x")
    parent, _ = _split(exporter.get_finished_spans())
    assert parent.name == "HTTP"
    assert parent.attributes["http.request.method"] == "_OTHER"  # type: ignore[index]
    assert parent.attributes["http.request.method_original"] == "PURGE"  # type: ignore[index]


async def test_breaker_change_is_an_event_on_the_call_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A breaker opening during the call is recorded on the call span."""
    plugin = CircuitBreakerPlugin(BreakerConfig(consecutive_failures=1), clock=FakeClock())
    client, _ = _client(TracingPlugin(provider), lambda r: HttpResponse(503), [plugin])
    await client.get("/x")
    parent, _ = _split(exporter.get_finished_spans())
    (event,) = parent.events
    assert event.name == "http.client.circuit_breaker"
    assert event.attributes is not None and event.attributes["flext_api.new"] == "open"


async def test_inbound_traceparent_becomes_the_parent(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Inside a server request without a current span, the inbound trace continues."""
    inbound = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client, _ = _client(TracingPlugin(provider))
    with request_context("rid", inbound):
        await client.get("/x")
    parent, _ = _split(exporter.get_finished_spans())
    assert parent.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert parent.parent is not None and parent.parent.span_id == 0xB7AD6B7169203331


async def test_current_span_becomes_the_parent(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An application span that is current when the call starts is its parent."""
    client, _ = _client(TracingPlugin(provider))
    tracer = provider.get_tracer("app")
    inbound = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    with tracer.start_as_current_span("handler") as handler, request_context("r", inbound):
        await client.get("/x")
    spans = [s for s in exporter.get_finished_spans() if s.name != "handler"]
    parent, _ = _split(spans)
    assert parent.parent is not None
    assert parent.parent.span_id == handler.get_span_context().span_id


async def test_cancelled_call_ends_its_spans(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Cancelling a call ends both spans with error.type CANCELLED."""
    started = asyncio.Event()

    async def hang(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client, _ = _client(TracingPlugin(provider), hang)
    task = asyncio.create_task(client.get("/x"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert {s.attributes["error.type"] for s in spans} == {"CANCELLED"}  # type: ignore[index]


async def test_attempt_stage_alone_starts_a_first_attempt_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Without its call stage, the attempt stage still makes a span and injects it."""
    stage = TracingPlugin(provider).attempt_stage()
    assert stage is not None
    seen: list[HttpRequest] = []

    async def endpoint(request: HttpRequest) -> Any:
        seen.append(request)
        return FlextResult.ok(HttpResponse(200))

    await stage(HttpRequest("GET", "http://h/"), endpoint)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.request.resend_count"] == 0  # type: ignore[index]
    assert "traceparent" in seen[0].headers


async def test_custom_propagator_is_used(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A propagator passed in writes the headers instead of the global one."""

    class Marker(TextMapPropagator):
        def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
            raise NotImplementedError

        def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
            carrier["x-marker"] = format(
                trace.get_current_span(context).get_span_context().span_id, "x"
            )

        @property
        def fields(self) -> set[str]:
            return {"x-marker"}

    client, transport = _client(TracingPlugin(provider, propagator=Marker()))
    await client.get("/x")
    assert "x-marker" in transport.requests[0].headers
    assert "traceparent" not in transport.requests[0].headers


async def test_global_noop_provider_is_the_default() -> None:
    """With no provider given, OpenTelemetry's global (no-op) one is used quietly."""
    client, transport = _client(TracingPlugin())
    assert (await client.get("/x")).is_success
    assert "traceparent" not in transport.requests[0].headers


def test_without_opentelemetry_the_plugin_is_a_pass_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenTelemetry missing: enabled is False and no attempt stage is added."""
    monkeypatch.delitem(sys.modules, "flext_api.client.observability._otel")
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    plugin = TracingPlugin()
    assert not plugin.enabled
    assert plugin.attempt_stage() is None
    assert repr(plugin) == "<TracingPlugin enabled=False>"
    with pytest.raises(ImportError, match=r"flext-api\[otel\]"):
        TracingPlugin(tracer_provider=object())


async def test_pass_through_still_sends_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A disabled plugin forwards the call unchanged."""
    monkeypatch.delitem(sys.modules, "flext_api.client.observability._otel")
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    client, transport = _client(TracingPlugin())
    assert (await client.get("/x")).is_success
    assert "traceparent" not in transport.requests[0].headers


def test_describe_lists_the_attempt_stage(provider: TracerProvider) -> None:
    """The client shows tracing[attempt] innermost."""
    client, _ = _client(TracingPlugin(provider))
    assert client.describe() == ["tracing", "tracing[attempt]", "redirects", "transport:mock"]


async def test_other_events_and_status_retries_are_recorded(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A limiter wait becomes a flext_api.* event; a response retry has no error.type."""
    emitter = Emitter()

    async def limiter(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        emitter.emit(RateLimitWaited("api.test", 0.5))
        return await call_next(request)

    codes = iter([503, 200])
    plugins = [RetryPlugin(RETRY, clock=FakeClock()), limiter]
    client, _ = _client(TracingPlugin(provider), lambda r: HttpResponse(next(codes)), plugins)
    await client.get("/x", fail_on_http_error=False)
    parent, _ = _split(exporter.get_finished_spans())
    names = [e.name for e in parent.events]
    assert names == ["flext_api.RateLimitWaited", "http.client.retry", "flext_api.RateLimitWaited"]
    retry = parent.events[1].attributes or {}
    assert "error.type" not in retry and retry["flext_api.status"] == 503


async def test_unparsable_port_is_left_out(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A hand-built request with a non-numeric port gets no server.port."""
    stage = TracingPlugin(provider).attempt_stage()
    assert stage is not None

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        return FlextResult.ok(HttpResponse(200))

    await stage(HttpRequest("GET", "http://h:abc/"), endpoint)
    (span,) = exporter.get_finished_spans()
    assert "server.port" not in (span.attributes or {})
    assert span.attributes["server.address"] == "h"  # type: ignore[index]
