"""CircuitBreakerPlugin: one breaker per host around every attempt.

Placed inside the retry stage, so each attempt is one call the breaker sees, and a
rejection (``CIRCUIT_OPEN``) is never retried. What counts:

* **host-down failure**: the host could not be reached or a gateway says it is down -
  ``CONNECT_ERROR``, ``CONNECT_TIMEOUT``, ``DNS_ERROR``, ``TLS_ERROR``,
  ``PROTOCOL_ERROR`` (the connection broke) or a 502, 503 or 504 response (Envoy's
  gateway failures). These in a row open the breaker fast;
* **call failure**: any other 5xx, 408, 429, a read/write timeout or a deadline passed
  mid-call (MS-HTTP's handled set). The host answered, so these count only in the
  failure ratio, and a few of them on one path never block the host's other paths;
* **success**: any other response, including other 4xx (a 404 is the caller's problem,
  not the host's);
* **neither**: failures raised before or around the exchange (``INVALID_REQUEST``,
  ``AUTH_ERROR``, ``PLUGIN_ERROR``, ``RATE_LIMITED`` or ``BULKHEAD_FULL`` from an inner
  stage, cancellation); a half-open trial slot taken by such a call is given back.

A call's duration, for slow-call detection, is the response's ``elapsed`` (the time
the server took) when there is one, else the time spent in the rest of the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._clock import Clock
from ..._config import BreakerConfig
from ..._errors import NOT_SENT, CircuitOpenError, ErrorCode
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import BreakerRegistry, BreakerRejected, EventHook, Reject
from ...resilience._events import Emitter
from .._plugin import CallNext, SplitPlugin
from ._common import KeyFunc, host_key, response_of

__all__ = ["CircuitBreakerPlugin", "counts_as_failure", "is_host_down"]


def _status_is_failure(status: int) -> bool:
    return status >= 500 or status == 408 or status == 429


_HOST_DOWN_CODES = frozenset(
    {
        ErrorCode.CONNECT_ERROR,
        ErrorCode.CONNECT_TIMEOUT,
        ErrorCode.DNS_ERROR,
        ErrorCode.TLS_ERROR,
        ErrorCode.PROTOCOL_ERROR,
    }
)
_GATEWAY_STATUSES = frozenset({502, 503, 504})


def is_host_down(result: FlextResult[HttpResponse]) -> bool:
    """True when a failed attempt says the host as a whole is down (see the module doc)."""
    error = result.exception
    if error is None:
        return result.value.status_code in _GATEWAY_STATUSES
    if error.response is not None:
        return error.response.status_code in _GATEWAY_STATUSES
    return error.code in _HOST_DOWN_CODES


def counts_as_failure(result: FlextResult[HttpResponse]) -> bool | None:
    """True (failure), False (success) or None (says nothing about the host)."""
    error = result.exception
    if error is None:
        return _status_is_failure(result.value.status_code)
    if error.response is not None:
        return _status_is_failure(error.response.status_code)
    if error.details.get("reason") == NOT_SENT:
        return None  # its deadline passed before anything was sent: the host said nothing
    if error.code.is_transport:
        return True
    if error.code is ErrorCode.HTTP_STATUS:
        return True  # a status failure whose response was not kept: assume the worst
    return None


class CircuitBreakerPlugin(SplitPlugin):
    """Refuse calls to a host whose breaker is open; feed every outcome back to it.

    ``registry`` shares breakers between plugins (or clients); ``key`` maps a request
    to its breaker (the host by default). A refused call returns ``CIRCUIT_OPEN`` with
    ``retry_after`` (seconds until the breaker half-opens) without calling further.
    """

    name = "circuit_breaker"

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        registry: BreakerRegistry | None = None,
        key: KeyFunc = host_key,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        if registry is not None and config is not None and registry.config != config:
            raise ValueError("pass either config or a registry built from it, not both")
        self.registry = registry if registry is not None else BreakerRegistry(config, hooks=hooks)
        self.config = self.registry.config
        self._key = key
        self._init_clock(clock)
        self._emitter = Emitter(hooks)

    # A SplitPlugin: the breaker's question and its report are two synchronous steps
    # around the attempt, run in the frame the pipeline shares with the stages around it.
    def enter(self, request: HttpRequest) -> Any:
        """Ask the host's breaker: ``(breaker, verdict, start)``, None when disabled, or
        the ``CIRCUIT_OPEN`` failure."""
        if not self.config.enabled:
            return None
        start = self._clock.monotonic()
        # The default key inline: one call less per attempt than through host_key.
        key = request.host if self._key is host_key else self._key(request)
        breaker = self.registry.get(key, start)
        verdict = breaker.allow(start)
        if isinstance(verdict, Reject):
            return self._reject(request, key, verdict)
        return breaker, verdict, start

    def abandon(self, token: Any) -> None:
        """The attempt raised (cancelled): give a half-open trial slot back."""
        if token is not None:
            token[0].release(token[1])

    def leave(
        self,
        request: HttpRequest,
        token: Any,
        result: FlextResult[HttpResponse],
        call_next: CallNext,
    ) -> FlextResult[HttpResponse]:
        """Report the attempt's outcome to the breaker; pass the result on."""
        if token is None:
            return result
        breaker, verdict, start = token
        if result._error is None:
            # The usual outcome, decided inline: a response that is not a host failure.
            value = result._value
            status = value.status_code
            if status < 500 and status != 408 and status != 429:
                elapsed = value.elapsed
                if elapsed > 0.0:
                    # The transport timed the exchange: its end is start + elapsed, as
                    # near as the window's buckets can tell, without another clock read.
                    breaker.on_success(start + elapsed, elapsed, verdict)
                else:
                    end = self._clock.monotonic()
                    breaker.on_success(end, end - start, verdict)
                return result
        end = self._clock.monotonic()
        failed = counts_as_failure(result)
        if failed is None:
            breaker.release(verdict)
            return result
        response = response_of(result)
        duration = response.elapsed if response is not None and response.elapsed else end - start
        if failed:
            breaker.on_failure(end, duration, verdict, host_down=is_host_down(result))
        else:
            breaker.on_success(end, duration, verdict)
        return result

    def _reject(self, request: HttpRequest, key: str, verdict: Reject) -> FlextResult[HttpResponse]:
        if self._emitter.active:
            self._emitter.emit(BreakerRejected(key, verdict.state.value, verdict.retry_after))
        if verdict.retry_after is not None:
            why = f"is {verdict.state.value}; it half-opens in {verdict.retry_after:.3g}s"
        else:
            why = f"is {verdict.state.value} and admits no more calls now"
        return FlextResult.fail(
            CircuitOpenError(
                f"circuit breaker for {key!r} {why}",
                request=request,
                retry_after=verdict.retry_after,
                details={"key": key, "state": verdict.state.value},
            )
        )

    def __repr__(self) -> str:
        return f"<CircuitBreakerPlugin {self.registry!r}>"
