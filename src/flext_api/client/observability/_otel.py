"""The OpenTelemetry calls behind :class:`~._tracing.TracingPlugin`.

This is the only module that imports ``opentelemetry``, at the top, typed. Nothing
imports it eagerly: ``TracingPlugin.__init__`` does, inside a ``try`` that turns the
plugin into a no-op when the ``otel`` extra is not installed.

Parenting: a call's span is a child of the current span when there is one (a server
handler instrumented with OpenTelemetry); otherwise of the inbound W3C ``traceparent``
that flext-api's server middleware stored in :mod:`flext_api._context`, so a trace
continues across services even when the server side has no tracer of its own.

Tracing never changes a call's outcome: OpenTelemetry's SDK does not guard the
application's span processors and propagators, so one that raises (in ``on_start``,
``on_end``, ``inject``) is logged here, with its traceback, and the call goes on (with
a non-recording span when the span could not be started).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from ..._context import TRACEPARENT_HEADER, get_traceparent
from ..._models import Headers
from ..._version import __version__

__all__ = ["OtelTracer"]

_W3C = TraceContextTextMapPropagator()
TRACESTATE_HEADER = "tracestate"
Attributes = Mapping[str, AttributeValue]

_log = structlog.get_logger("flext_api.client.observability")


def _tracer_failed(operation: str) -> None:
    # Called from an ``except`` block: ``exception`` records the traceback.
    _log.exception("tracing.failed", operation=operation)


class OtelTracer:
    """Starts, activates, propagates and ends the client's spans."""

    __slots__ = ("_propagator", "_tracer")

    def __init__(
        self, tracer_provider: TracerProvider | None, propagator: TextMapPropagator | None
    ) -> None:
        self._tracer = trace.get_tracer(
            "flext_api.client", __version__, tracer_provider=tracer_provider
        )
        self._propagator = propagator

    @staticmethod
    def _inbound_parent(headers: Headers | None = None) -> Context | None:
        if trace.get_current_span().get_span_context().is_valid:
            return None  # the current span is the parent
        sent = None if headers is None else headers.get(TRACEPARENT_HEADER)
        if sent is not None:
            # The caller's own (or the propagated inbound) traceparent on the request:
            # the call continues that trace, its tracestate included.
            carrier = {TRACEPARENT_HEADER: sent}
            tracestate = headers.get(TRACESTATE_HEADER) if headers is not None else None
            if tracestate is not None:
                carrier[TRACESTATE_HEADER] = tracestate
            context = _W3C.extract(carrier)
            if trace.get_current_span(context).get_span_context().is_valid:
                return context
        traceparent = get_traceparent()
        if traceparent is None:
            return None
        return _W3C.extract({TRACEPARENT_HEADER: traceparent})

    def start_call(self, name: str, attributes: Attributes, headers: Headers | None = None) -> Span:
        """A CLIENT span for one logical call.

        Parent: the current span; else the W3C context in ``headers`` (the request's
        ``traceparent``); else the inbound ``traceparent`` of the server request.
        """
        try:
            return self._tracer.start_span(
                name,
                context=self._inbound_parent(headers),
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )
        except Exception:  # noqa: BLE001 - an app's span processor must not fail the call
            _tracer_failed("start_call")
            return trace.INVALID_SPAN

    def start_attempt(self, parent: Span | None, name: str, attributes: Attributes) -> Span:
        """A CLIENT span for one attempt, child of ``parent`` (or of the current span)."""
        context = None if parent is None else trace.set_span_in_context(parent)
        try:
            return self._tracer.start_span(
                name, context=context, kind=SpanKind.CLIENT, attributes=attributes
            )
        except Exception:  # noqa: BLE001 - an app's span processor must not fail the call
            _tracer_failed("start_attempt")
            return trace.INVALID_SPAN

    @staticmethod
    def activate(span: Span) -> AbstractContextManager[Span]:
        """Make ``span`` current for a block (ending it stays the caller's job)."""
        return trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    def inject(self, span: Span, headers: Headers) -> None:
        """Write ``span``'s context (``traceparent``...) into ``headers``.

        A ``tracestate`` already on the request is dropped when a ``traceparent`` is
        written without one: it belonged to the caller's ``traceparent`` (W3C Trace
        Context §4.3: a malformed one restarts the trace and deletes ``tracestate``), or
        OpenTelemetry refused it (more than 32 members...). The ``tracestate`` sent is
        always the one of the ``traceparent`` sent.
        """
        carrier: dict[str, str] = {}
        propagator = self._propagator if self._propagator is not None else get_global_textmap()
        try:
            propagator.inject(carrier, context=trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001 - an app's propagator must not fail the call
            _tracer_failed("inject")
            return  # nothing half-written: the carrier is dropped
        written = {name.lower() for name in carrier}
        if TRACEPARENT_HEADER in written and TRACESTATE_HEADER not in written:
            headers.remove(TRACESTATE_HEADER)
        for name, value in carrier.items():
            headers.set(name, value)

    @staticmethod
    def add_event(span: Span, name: str, attributes: Attributes) -> None:
        """Record a point in time (a scheduled retry, a breaker change) on ``span``."""
        try:
            span.add_event(name, attributes)
        except Exception:  # noqa: BLE001 - a custom Span must not fail the call
            _tracer_failed("add_event")

    @staticmethod
    def finish(
        span: Span,
        *,
        status_code: int | None,
        error_type: str | None,
        description: str | None,
    ) -> None:
        """Record the outcome on ``span`` and end it."""
        try:
            if status_code is not None:
                span.set_attribute("http.response.status_code", status_code)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, description))
            span.end()
        except Exception:  # noqa: BLE001 - a span processor's on_end must not fail the call
            _tracer_failed("finish")
