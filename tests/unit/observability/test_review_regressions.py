"""Regressions from a review of the observability plugins (bodies, metrics, traces)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flext_api import HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client.observability import LoggingPlugin, MetricsPlugin, Redactor, TracingPlugin
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport
from tests.unit.observability.logcapture import LogCapture

SECRET = "sekrit-Zq8v-0451"
JSON = "application/json"


# -- bodies ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        f'{{"password": "{SECRET}", "items": [1, 2'.encode(),  # cut short
        f'{{"n": NaN, "token": "{SECRET}"}}'.encode(),  # not strict JSON
        f'{{"Password" : "{SECRET}'.encode(),  # cut inside the value
        (b'{"a":' * 300) + f'{{"api_key": "{SECRET}"}}'.encode() + b"}" * 300,  # deep
        (b"[" * 1000) + f'{{"secret": "{SECRET}"}}'.encode() + (b"]" * 1000),  # deeper
    ],
    ids=["truncated", "nan", "cut-value", "nested-300", "nested-1000"],
)
def test_json_bodies_that_do_not_round_trip_are_still_masked(body: bytes) -> None:
    """Sensitive members of JSON orjson cannot round-trip are masked, never raised on."""
    text = Redactor().body(body, JSON, 100_000)
    assert SECRET not in text
    assert "[REDACTED]" in text


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/octet-stream"])
def test_json_members_in_a_body_of_another_type_are_masked(content_type: str | None) -> None:
    """A token endpoint answering text/plain still sends JSON: its access_token was
    logged in clear by LoggingPlugin(log_bodies=True)."""
    body = f'{{"access_token":"{SECRET}","token_type":"bearer"}}'.encode()
    text = Redactor().body(body, content_type, 100_000)
    assert SECRET not in text and '"token_type":"bearer"' in text


async def test_a_deeply_nested_json_response_keeps_a_logged_call_successful(
    json_logs: LogCapture,
) -> None:
    """log_bodies=True and a server answering [[[...]]]: the call stays a success."""
    deep = b"[" * 1000 + b"]" * 1000

    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, headers={"Content-Type": JSON}, content=deep)

    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(handler),
        plugins=[LoggingPlugin(log_bodies=True)],
        default_plugins=False,
    )
    async with client:
        result = await client.get("/x")
    assert result.is_success, result.error
    (attempt,) = json_logs.events("http.client.attempt")
    assert attempt["response_body"].startswith("[[[")


# -- metrics --------------------------------------------------------------------------------
async def test_a_cancelled_call_is_counted_as_cancelled() -> None:
    """The duration histogram counts a cancelled call (error_type CANCELLED, no status)."""
    started = asyncio.Event()

    async def hang(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    metrics = MetricsPlugin(clock=FakeClock())
    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(hang),
        plugins=[metrics],
        default_plugins=False,
    )
    async with client:
        task = asyncio.create_task(client.get("/x"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    labels = {
        "http_request_method": "GET",
        "server_address": "api.test:80",
        "status_class": "none",
        "error_type": "CANCELLED",
    }
    count = metrics.registry.get_sample_value("http_client_request_duration_seconds_count", labels)
    assert count == 1.0
    active = metrics.registry.get_sample_value(
        "http_client_active_requests",
        {"http_request_method": "GET", "server_address": "api.test:80"},
    )
    assert active == 0.0


# -- traces ---------------------------------------------------------------------------------
@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A local tracer provider and its finished spans (the global one is never touched)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


CALLER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
CALLER = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"


async def _traced_call(
    spans: tuple[TracerProvider, InMemorySpanExporter], headers: dict[str, str]
) -> tuple[Any, MockTransport]:
    """One traced GET with ``headers``: its call span (not an attempt's) and the transport."""
    provider, exporter = spans
    transport = MockTransport(lambda r: HttpResponse(200))
    client = FlextApiClient(
        "http://api.test",
        transport=transport,
        plugins=[TracingPlugin(provider)],
        default_plugins=False,
    )
    async with client:
        await client.get("/x", headers=headers)
    finished = exporter.get_finished_spans()
    call = next(s for s in finished if "http.request.resend_count" not in (s.attributes or {}))
    return call, transport


async def test_a_callers_traceparent_is_continued_not_replaced_by_a_new_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A request sent with its own traceparent (no current span): the call joins that trace.

    The attempt still sends its own span's context (one traceparent header, same trace id),
    and its tracestate follows.
    """
    call, transport = await _traced_call(spans, {"traceparent": CALLER, "tracestate": "vendor=1"})
    assert call.context.trace_id == CALLER_TRACE
    assert call.parent is not None and call.parent.span_id == CALLER_SPAN
    (sent,) = transport.requests
    values = [v for k, v in sent.headers.raw() if k.lower() == "traceparent"]
    assert len(values) == 1
    assert values[0].split("-")[1] == f"{CALLER_TRACE:032x}"
    assert values[0] != CALLER
    assert sent.headers.get("tracestate") == "vendor=1"


async def test_a_malformed_caller_traceparent_starts_a_new_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A traceparent that is not W3C is ignored as a parent and replaced on the wire."""
    call, transport = await _traced_call(spans, {"traceparent": "garbage"})
    assert call.parent is None
    assert transport.requests[0].headers["traceparent"].startswith("00-")
