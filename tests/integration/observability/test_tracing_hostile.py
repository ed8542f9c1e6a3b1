"""TracingPlugin against a real server on 127.0.0.1, as a production caller uses it.

Spans go to the real OpenTelemetry SDK with an in-memory exporter and a processor that
counts how often each span ends; the upstream records the headers it received.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from flext_api import HttpRequest
from flext_api.client import FlextApiClient
from flext_api.client.observability import TracingPlugin
from flext_api.client.plugins import BulkheadPlugin

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class EndCounter(SpanProcessor):
    """Counts ``on_start`` and each span's ``on_end`` calls."""

    def __init__(self) -> None:
        self.started = 0
        self.ended: Counter[int] = Counter()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.ended[span.context.span_id] += 1


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Finished spans, in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def ends() -> EndCounter:
    """How many times each span ended."""
    return EndCounter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter, ends: EndCounter) -> Iterator[TracerProvider]:
    """A local tracer provider (the global one is never touched)."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tp.add_span_processor(ends)
    yield tp
    tp.shutdown()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server on 127.0.0.1: ``/404`` answers 404, ``/hang`` never answers, else 200."""
    seen: list[dict[str, str]] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        if request.path == "/404":
            return web.Response(status=404)
        if request.path == "/hang":
            await release.wait()  # set at teardown, so the server's shutdown waits for nothing
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    release.set()
    await runner.cleanup()


def _call_span(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    (call,) = [s for s in spans if "http.request.resend_count" not in (s.attributes or {})]
    return call


def _raising_key(request: HttpRequest) -> str:
    raise KeyError("tenant")


async def test_a_plugin_that_raises_still_ends_both_spans_once(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    ends: EndCounter,
    upstream: tuple[str, list[dict[str, str]]],
) -> None:
    """A built-in plugin raising (a bulkhead's key function) ends the call span as PLUGIN_ERROR."""
    url, _ = upstream
    async with FlextApiClient(
        url, plugins=[TracingPlugin(provider), BulkheadPlugin(key=_raising_key)]
    ) as client:
        result = await client.get("/x")
    assert result.exception is not None
    assert result.exception.code.value == "PLUGIN_ERROR"
    call = _call_span(exporter.get_finished_spans())
    assert call.attributes is not None
    assert call.attributes["error.type"] == "PLUGIN_ERROR"
    assert call.status.status_code is StatusCode.ERROR
    assert ends.started == sum(ends.ended.values())
    assert set(ends.ended.values()) == {1}


async def test_an_attempt_stage_left_by_an_exception_ends_its_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An exception from below the attempt stage ends the attempt span, then propagates."""
    stage = TracingPlugin(provider).attempt_stage()
    assert stage is not None

    async def endpoint(request: HttpRequest) -> object:
        raise RuntimeError("below the attempt stage")

    with pytest.raises(RuntimeError):
        await stage(HttpRequest("GET", "http://h.test/"), endpoint)  # type: ignore[arg-type]
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "PLUGIN_ERROR"


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID.upper()}-{PARENT_ID.upper()}-01",  # uppercase hex
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID}-{PARENT_ID}-01" + "0" * 4096,  # too long
    ],
    ids=["uppercase", "version-ff", "zero-trace-id", "extra-field", "too-long"],
)
async def test_a_malformed_callers_traceparent_restarts_the_trace_without_its_tracestate(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    upstream: tuple[str, list[dict[str, str]]],
    traceparent: str,
) -> None:
    """W3C §4.3: a traceparent that does not parse starts a new trace and drops tracestate."""
    url, seen = upstream
    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:
        await client.get("/x", headers={"traceparent": traceparent, "tracestate": "vendor=old"})
    call = _call_span(exporter.get_finished_spans())
    assert call.parent is None
    assert call.context is not None
    sent = seen[0]
    assert sent["traceparent"].split("-")[1] == f"{call.context.trace_id:032x}" != TRACE_ID
    assert "tracestate" not in sent


async def test_a_tracestate_opentelemetry_refuses_is_not_forwarded(
    provider: TracerProvider, upstream: tuple[str, list[dict[str, str]]]
) -> None:
    """A tracestate of 33 members (W3C allows 32) is dropped, the trace still continued."""
    url, seen = upstream
    oversized = ",".join(f"k{i}=v{i}" for i in range(33))
    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:
        await client.get(
            "/x",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": oversized},
        )
    assert seen[0]["traceparent"].split("-")[1] == TRACE_ID
    assert "tracestate" not in seen[0]


async def test_a_valid_tracestate_is_forwarded_with_its_trace(
    provider: TracerProvider, upstream: tuple[str, list[dict[str, str]]]
) -> None:
    """A well-formed traceparent and tracestate are continued together."""
    url, seen = upstream
    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:
        await client.get(
            "/x",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "a=1,b=2"},
        )
    assert seen[0]["traceparent"].split("-")[1] == TRACE_ID
    assert seen[0]["tracestate"] == "a=1,b=2"


async def test_a_4xx_answer_is_an_error_on_the_client_spans(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    upstream: tuple[str, list[dict[str, str]]],
) -> None:
    """OTel HTTP semconv: a 4xx sets status ERROR on CLIENT spans, error.type "404"."""
    url, _ = upstream
    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:
        await client.get("/404")
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        assert span.attributes is not None
        assert span.attributes["http.response.status_code"] == 404
        assert span.attributes["error.type"] == "404"
        assert span.status.status_code is StatusCode.ERROR


async def test_concurrent_calls_each_get_their_own_parent(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    upstream: tuple[str, list[dict[str, str]]],
) -> None:
    """Two calls in flight under two handler spans: each call span is its handler's child."""
    url, seen = upstream
    tracer = provider.get_tracer("test")
    both = asyncio.Barrier(2)

    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:

        async def under(name: str) -> int:
            with tracer.start_as_current_span(name) as handler:
                await both.wait()  # both handler spans are current when the calls start
                await client.get(f"/{name}")
                return handler.get_span_context().span_id

        handlers = await asyncio.gather(under("a"), under("b"))
    calls = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    by_parent = {
        s.parent.span_id: s
        for s in calls
        if s.parent is not None and "http.request.resend_count" not in (s.attributes or {})
    }
    assert set(by_parent) == set(handlers)
    for handler_id in handlers:
        call = by_parent[handler_id]
        assert call.context is not None
        (attempt,) = [s for s in calls if s.parent and s.parent.span_id == call.context.span_id]
        assert attempt.context is not None
        sent = next(
            h for h in seen if h["traceparent"].split("-")[2] == f"{attempt.context.span_id:016x}"
        )
        assert sent["traceparent"].split("-")[1] == f"{call.context.trace_id:032x}"


async def test_a_cancelled_call_ends_each_span_exactly_once(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    ends: EndCounter,
    upstream: tuple[str, list[dict[str, str]]],
) -> None:
    """Cancelling a call in flight on the wire ends call and attempt span once, CANCELLED."""
    url, seen = upstream
    async with FlextApiClient(url, plugins=[TracingPlugin(provider)]) as client:
        task = asyncio.create_task(client.get("/hang"))
        for _ in range(10_000):
            if seen:
                break
            await asyncio.sleep(0)
        assert seen, "the request never reached the server"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert {(s.attributes or {}).get("error.type") for s in spans} == {"CANCELLED"}
    assert ends.started == 2
    assert set(ends.ended.values()) == {1}
