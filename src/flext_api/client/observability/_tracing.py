"""TracingPlugin: OpenTelemetry spans for every call and every attempt.

Shape of a call retried twice (OpenTelemetry HTTP semantic conventions)::

    GET            CLIENT  http.request.method, server.address, server.port,
    │                      url.full (redacted), http.response.status_code, error.type
    │  events: http.client.retry (one per scheduled retry, with its backoff delay)
    ├─ GET         CLIENT  http.request.resend_count=0   <- traceparent of this span
    ├─ GET         CLIENT  http.request.resend_count=1      is sent with the attempt
    └─ GET         CLIENT  http.request.resend_count=2

The call span is made current while the call runs, so anything the pipeline does
(an OAuth2 token request, the application's log processors) sees it. Attempt spans come
from :meth:`TracingPlugin.attempt_stage`, which the client places below retry and auth;
each attempt carries its own span's W3C ``traceparent``. ``resend_count`` is set on
every attempt span, 0 included, so dashboards can count first attempts too.

``error.type`` is the status code as a string when a response with status >= 400
arrived (the convention's rule), else the :class:`~flext_api.ErrorCode` value.

Without OpenTelemetry installed the plugin is a pass-through (``enabled`` is False);
``opentelemetry`` is imported only when a plugin is built, never by ``import flext_api``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog

from ..._errors import ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._redact import escape_control
from ..._result import FlextResult
from ...resilience import BreakerStateChanged, ResilienceEvent, RetryScheduled
from .._plugin import CallNext, FlextApiPlugin, Middleware
from ._redaction import Redactor
from ._scope import (
    AttemptStage,
    CallState,
    current,
    normalize_method,
    pop,
    push,
    response_of,
    server_address,
    split_address,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ._otel import OtelTracer

__all__ = ["TracingPlugin"]

_log = structlog.get_logger("flext_api.client.observability")


def _error_type(result: FlextResult[HttpResponse]) -> str | None:
    response = response_of(result)
    if response is not None and response.status_code >= 400:
        return str(response.status_code)
    error = result.exception
    return None if error is None else error.code.value


def _event_attributes(event: ResilienceEvent) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, str):
            attrs[f"flext_api.{field.name}"] = escape_control(str(value))
        elif isinstance(value, int | float | bool):
            attrs[f"flext_api.{field.name}"] = value
    return attrs


class TracingPlugin(FlextApiPlugin):
    """OpenTelemetry spans per call and per attempt, with W3C propagation.

    >>> from opentelemetry.sdk.trace import TracerProvider   # doctest: +SKIP
    >>> plugin = TracingPlugin(tracer_provider=TracerProvider())   # doctest: +SKIP

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        propagator: how context is written into requests (default: the global one,
            W3C ``traceparent``/``tracestate`` and baggage unless configured).
        redact_headers / redact_params: more names to mask in ``url.full`` and messages.
    """

    name = "tracing"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        tracer_provider: Any = None,
        *,
        propagator: Any = None,
        redact_headers: Iterable[str] = (),
        redact_params: Iterable[str] = (),
    ) -> None:
        self.redactor = Redactor(redact_headers, redact_params)
        self._otel: OtelTracer | None
        try:
            from ._otel import OtelTracer
        except ImportError as exc:
            if tracer_provider is not None or propagator is not None:
                raise ImportError(
                    "TracingPlugin needs the 'otel' extra: pip install 'flext-api[otel]'"
                ) from exc
            _log.info("tracing.disabled", reason="opentelemetry is not installed")
            self._otel = None
        else:
            self._otel = OtelTracer(tracer_provider, propagator)

    @property
    def enabled(self) -> bool:
        """False when OpenTelemetry is not installed (the plugin then does nothing)."""
        return self._otel is not None

    def _attributes(self, request: HttpRequest, server: str) -> tuple[str, dict[str, Any]]:
        method = normalize_method(request.method)
        host, port = split_address(server)
        attrs: dict[str, Any] = {
            "http.request.method": method,
            "server.address": host,
            "url.full": self.redactor.for_request(request).url(request.url),
        }
        if port is not None:
            attrs["server.port"] = port
        if method == "_OTHER":
            attrs["http.request.method_original"] = escape_control(request.method)
        return ("HTTP" if method == "_OTHER" else method), attrs

    def _finish(self, span: Span, result: FlextResult[HttpResponse], *sent: HttpRequest) -> None:
        assert self._otel is not None
        response = response_of(result)
        error = result.exception
        self._otel.finish(
            span,
            status_code=None if response is None else response.status_code,
            error_type=_error_type(result),
            description=None if error is None else self._describe(error, sent),
        )

    def _describe(self, error: FlextApiError, sent: tuple[HttpRequest, ...]) -> str:
        redactor = self.redactor.for_request(*sent)
        return redactor.text(str(error), redactor.secrets(*sent))

    def _escaped(self, span: Span, exc: BaseException, *sent: HttpRequest) -> None:
        """End ``span`` for a call or attempt left by an exception (never twice).

        Cancellation is ``CANCELLED``; a plugin's exception (a breaker's ``key``
        function raising...) is ``PLUGIN_ERROR``, as the pipeline's guard reports it;
        any other ``BaseException`` is named by its class.
        """
        assert self._otel is not None
        if isinstance(exc, asyncio.CancelledError):
            error_type, description = ErrorCode.CANCELLED.value, "cancelled"
        else:
            error_type = (
                ErrorCode.PLUGIN_ERROR.value
                if isinstance(exc, Exception)
                else type(exc).__qualname__
            )
            redactor = self.redactor.for_request(*sent)
            description = redactor.text(f"{type(exc).__name__}: {exc}", redactor.secrets(*sent))
        self._otel.finish(span, status_code=None, error_type=error_type, description=description)

    # -- the call ----------------------------------------------------------------------------
    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Run the call inside its CLIENT span."""
        otel = self._otel
        if otel is None:
            return await call_next(request)
        state = CallState(request, 0.0)
        name, attrs = self._attributes(request, state.server)
        span = otel.start_call(name, attrs, request.headers)
        state.data = span
        token = push(self, state)
        try:
            with otel.activate(span):
                result = await call_next(request)
        except BaseException as exc:
            # Cancelled, or a plugin raised (the pipeline's guard turns it into
            # PLUGIN_ERROR further out): the span still ends, once.
            self._escaped(span, exc, request, *state.sent)
            raise
        finally:
            pop(token)
        # The attempts' requests too: auth added secrets the caller's request lacks.
        self._finish(span, result, request, *state.sent)
        return result

    # -- each attempt ------------------------------------------------------------------------
    def attempt_stage(self) -> Middleware | None:
        """A stage below retry and auth: one child span per attempt, context injected."""
        return None if self._otel is None else AttemptStage(self.name, self._attempt)

    async def _attempt(
        self, request: HttpRequest, call_next: CallNext
    ) -> FlextResult[HttpResponse]:
        otel = self._otel
        assert otel is not None
        state = current(self)
        parent: Span | None = None
        resend = 0
        attempt = request.copy()
        if state is not None:
            parent, resend = state.data, state.attempt(attempt) - 1
        name, attrs = self._attributes(request, server_address(request))
        attrs["http.request.resend_count"] = resend
        span = otel.start_attempt(parent, name, attrs)
        otel.inject(span, attempt.headers)
        try:
            with otel.activate(span):
                result = await call_next(attempt)
        except BaseException as exc:
            self._escaped(span, exc, attempt)
            raise
        self._finish(span, result, attempt)
        return result

    # -- resilience events -----------------------------------------------------------------
    def on_resilience_event(self, event: ResilienceEvent, state: CallState) -> None:
        """Record a retry's backoff or a breaker change as an event on the call span."""
        assert self._otel is not None
        span: Span = state.data
        attrs = _event_attributes(event)
        if isinstance(event, RetryScheduled):
            attrs["http.request.resend_count"] = event.attempt
            if event.error_code is not None:
                attrs["error.type"] = event.error_code.value
            self._otel.add_event(span, "http.client.retry", attrs)
        elif isinstance(event, BreakerStateChanged):
            self._otel.add_event(span, "http.client.circuit_breaker", attrs)
        else:
            self._otel.add_event(span, f"flext_api.{type(event).__name__}", attrs)

    def __repr__(self) -> str:
        return f"<TracingPlugin enabled={self.enabled}>"
