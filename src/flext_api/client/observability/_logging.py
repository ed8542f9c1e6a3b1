"""LoggingPlugin: one structured record per attempt, one per outcome, secrets masked.

Records go to ``structlog.get_logger("flext_api.client")`` (or the logger you pass):
this module configures nothing, the application decides rendering and levels. Event
names and levels:

========================  ======================================================
``http.client.attempt``   one per attempt: debug when it succeeded, info when not
``http.client.request``   one per call: info on success; warning for a 4xx,
                          ``INVALID_REQUEST``, ``RATE_LIMITED``, ``BULKHEAD_FULL``,
                          ``CANCELLED``; error otherwise (5xx, network, breaker...)
``http.client.retry``     a retry scheduled: info for the first, warning after
``http.client.retry_gave_up``  warning
``http.client.breaker``   a breaker changed state: error when it opened, warning
                          for half-open, info when it closed
``http.client.resilience``  any other resilience event (limiter waits...): debug
========================  ======================================================

Every value that can carry a secret or an attacker's bytes goes through
:class:`~._redaction.Redactor` (masked, control characters escaped), so one call is
one set of single-line records under any renderer. A URL (``url``, a ``Location``
header) and the ``error`` text (which names the URL) are cut after their first 8,192
characters (``...[N more]`` follows, see :data:`~flext_api._redact.MAX_LOGGED_URL`).
Headers and bodies are logged only
when asked (``log_headers``, ``log_bodies``; bodies truncated to ``max_body``).

List this plugin first (outermost), as the default pipeline does: it then sees the
call once, every attempt below retry and auth, and the resilience events in between.

A logger that raises (a broken renderer or processor) never changes the call's outcome:
the failure goes to the standard ``logging`` module (``flext_api.client``, error, with
the traceback), which never raises into its caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

import structlog

from ..._clock import Clock
from ..._context import get_request_id
from ..._errors import ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._numbers import is_int
from ..._redact import escape_control, truncate
from ..._result import FlextResult
from ...resilience import BreakerStateChanged, ResilienceEvent, RetryGaveUp, RetryScheduled
from .._plugin import CallNext, FlextApiPlugin, Middleware
from ._redaction import Redactor
from ._scope import (
    AttemptStage,
    CallState,
    current,
    pop,
    push,
    response_of,
)

__all__ = ["LoggingPlugin"]

_WARNING_CODES = frozenset(
    {
        ErrorCode.INVALID_REQUEST,
        ErrorCode.RATE_LIMITED,
        ErrorCode.BULKHEAD_FULL,
        ErrorCode.CANCELLED,
    }
)
_BREAKER_LEVELS = {"open": "error", "forced_open": "error", "half_open": "warning"}


def _outcome_level(error: FlextApiError) -> str:
    if error.code in _WARNING_CODES:
        return "warning"
    response = error.response
    if error.code is ErrorCode.HTTP_STATUS and response is not None:
        return "warning" if response.status_code < 500 else "error"
    return "error"


_fallback = logging.getLogger("flext_api.client")


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class LoggingPlugin(FlextApiPlugin):
    """Structured, redacted logs of every call and attempt (see the module docstring).

    >>> LoggingPlugin(log_bodies=True, redact_params=["sig"])
    <LoggingPlugin headers=False bodies=True max_body=1024>

    Args:
        logger: a structlog logger (default ``structlog.get_logger("flext_api.client")``).
        log_headers: add the (redacted) request and response headers to attempt records.
        log_bodies: add the bodies to attempt records (redacted, truncated).
        max_body: characters of a body kept when ``log_bodies`` is on.
        redact_headers / redact_params: more header / query-parameter names to mask.
        clock: injectable clock for durations.
    """

    name = "logging"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        logger: Any = None,
        *,
        log_headers: bool = False,
        log_bodies: bool = False,
        max_body: int = 1024,
        redact_headers: Iterable[str] = (),
        redact_params: Iterable[str] = (),
        clock: Clock | None = None,
    ) -> None:
        if not is_int(max_body):
            # NaN passes a "< 0" check and never truncates anything; a float fails
            # only later, at the first body logged.
            raise TypeError(f"max_body must be an int, got {max_body!r}")
        if max_body < 0:
            raise ValueError(f"max_body must be >= 0, got {max_body}")
        self._log: Any = logger if logger is not None else structlog.get_logger("flext_api.client")
        self.log_headers = log_headers
        self.log_bodies = log_bodies
        self.max_body = max_body
        self.redactor = Redactor(redact_headers, redact_params)
        self._init_clock(clock)

    # -- the call ----------------------------------------------------------------------------
    def _base(self, request: HttpRequest, redactor: Redactor) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "method": escape_control(request.method),
            # Redacted and escaped first, then cut: a secret is never cut in two.
            "url": truncate(redactor.url(request.url)),
        }
        request_id = get_request_id()
        if request_id is not None:
            fields["request_id"] = escape_control(request_id)
        return fields

    @staticmethod
    def _error_fields(
        fields: dict[str, Any], error: FlextApiError, redactor: Redactor, *sent: HttpRequest
    ) -> None:
        redactor = redactor.for_request(*sent)
        fields["error_code"] = error.code.value
        # Masked first, then cut (an error names the URL: a 100 kB path is not logged whole).
        fields["error"] = truncate(redactor.text(error.message, redactor.secrets(*sent)))

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Log the call's outcome once, after every attempt and retry."""
        state = CallState(request, self._clock.monotonic(), self.redactor.for_request(request))
        token = push(self, state)
        try:
            result = await call_next(request)
        except asyncio.CancelledError:
            self._outcome(state, None)
            raise
        except Exception as exc:
            # A plugin below raised (a bulkhead's key function...): the call still gets
            # its record, as the PLUGIN_ERROR the pipeline's guard makes of it further out.
            failed = FlextApiError.from_code(
                ErrorCode.PLUGIN_ERROR, f"a plugin raised {type(exc).__name__}: {exc}"
            )
            self._outcome(state, FlextResult(error=failed))
            raise
        finally:
            pop(token)
        self._outcome(state, result)
        return result

    def _outcome(self, state: CallState, result: FlextResult[HttpResponse] | None) -> None:
        redactor: Redactor = state.data
        request = state.request
        fields = self._base(request, redactor)
        fields["duration_ms"] = _ms(self._clock.monotonic() - state.started)
        fields["attempts"] = state.attempts
        response = None if result is None else response_of(result)
        fields["status"] = None if response is None else response.status_code
        if response is not None and response.from_cache:
            fields["from_cache"] = True
            fields["cache_status"] = response.cache_status
        error = None if result is None else result.exception
        if result is None:
            fields["error_code"] = ErrorCode.CANCELLED.value
            level = "info"  # the caller cancelled on purpose: not a fault of the call
        elif error is None:
            level = "info"
        else:
            # The attempts' requests too: auth added secrets the caller's request lacks.
            self._error_fields(fields, error, redactor, request, *state.sent)
            level = _outcome_level(error)
        self._emit(level, "http.client.request", fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """Write one record; a logger that raises is reported, never passed on."""
        try:
            getattr(self._log, level)(event, **fields)
        except Exception:  # noqa: BLE001 - observability must not change the call's outcome
            _fallback.exception("LoggingPlugin could not write %s", event)

    # -- each attempt ------------------------------------------------------------------------
    def attempt_stage(self) -> Middleware:
        """A stage below retry and auth that logs every attempt."""
        return AttemptStage(self.name, self._attempt)

    async def _attempt(
        self, request: HttpRequest, call_next: CallNext
    ) -> FlextResult[HttpResponse]:
        state = current(self)
        number = 1 if state is None else state.attempt(request)
        started = self._clock.monotonic()
        result = await call_next(request)
        redactor = self.redactor.for_request(request)
        fields = self._base(request, redactor)
        fields["attempt"] = number
        response = response_of(result)
        fields["status"] = None if response is None else response.status_code
        fields["duration_ms"] = _ms(self._clock.monotonic() - started)
        error = result.exception
        if error is not None:
            self._error_fields(fields, error, redactor, request)
        if self.log_headers:
            fields["request_headers"] = redactor.header_map(request.headers)
            if response is not None:
                fields["response_headers"] = redactor.header_map(response.headers)
        if self.log_bodies:
            self._bodies(fields, request, response, redactor)
        failed = error is not None or (response is not None and response.status_code >= 400)
        self._emit("info" if failed else "debug", "http.client.attempt", fields)
        return result

    def _bodies(
        self,
        fields: dict[str, Any],
        request: HttpRequest,
        response: HttpResponse | None,
        redactor: Redactor,
    ) -> None:
        if request.stream is not None:
            fields["request_body"] = "<stream>"
        elif request.content:
            ctype = request.headers.get("content-type")
            fields["request_body"] = redactor.body(request.content, ctype, self.max_body)
        if response is None:
            return
        if not response.is_stream_consumed:
            fields["response_body"] = "<stream>"
            return
        try:
            content = response.content
        except FlextApiError:
            # A stream closed unread (a redirect given up on): nothing to show, and a
            # body that cannot be logged never fails the call.
            fields["response_body"] = "<closed>"
            return
        if content:
            ctype = response.headers.get("content-type")
            fields["response_body"] = redactor.body(content, ctype, self.max_body)

    # -- resilience events -----------------------------------------------------------------
    def on_resilience_event(self, event: ResilienceEvent, state: CallState) -> None:
        """Log a retry, a breaker transition or another policy event of this call."""
        fields = self._base(state.request, state.data)
        if isinstance(event, RetryScheduled):
            fields.update(
                attempt=event.attempt,
                delay_s=round(event.delay, 3),
                status=event.status,
                error_code=None if event.error_code is None else event.error_code.value,
                retry_after=event.retry_after,
            )
            level = "info" if event.attempt <= 1 else "warning"
            self._emit(level, "http.client.retry", fields)
        elif isinstance(event, RetryGaveUp):
            fields.update(
                attempts=event.attempts,
                reason=escape_control(event.reason),
                error_code=None if event.error_code is None else event.error_code.value,
            )
            self._emit("warning", "http.client.retry_gave_up", fields)
        elif isinstance(event, BreakerStateChanged):
            fields.update(
                key=escape_control(event.key),
                old=event.old,
                new=event.new,
                reason=escape_control(event.reason),
                open_for=event.open_for,
            )
            level = _BREAKER_LEVELS.get(event.new, "info")
            self._emit(level, "http.client.breaker", fields)
        else:
            for field in dataclasses.fields(event):
                value = getattr(event, field.name)
                fields[field.name] = escape_control(value) if isinstance(value, str) else value
            fields["resilience_event"] = type(event).__name__
            self._emit("debug", "http.client.resilience", fields)

    def __repr__(self) -> str:
        return (
            f"<LoggingPlugin headers={self.log_headers} bodies={self.log_bodies} "
            f"max_body={self.max_body}>"
        )
