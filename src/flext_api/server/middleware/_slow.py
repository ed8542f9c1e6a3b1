"""Slow requests: one warning per request over a threshold, and a counter.

A request slower than the threshold (default 1 s; per route with
:func:`~flext_api.server.slow_request_threshold`) logs one ``slow request`` warning
carrying the request ID, the route *template* (never the raw path) and the duration, and
increments ``http_server_slow_requests_total{route}`` when metrics are on. The duration
runs from entering the observed pass to the end of the app's call, i.e. to the last body
byte of an ordinary response. The clock is injectable, so tests decide what "slow" is.

The check is a :class:`SlowRequestReporter` run by the factory's observed pass, which
times every request anyway: no layer and no clock reading of its own per request.
:class:`SlowRequestMiddleware` is that pass with only this concern on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter
from starlette.types import ASGIApp, Scope

from ..._clock import Clock
from .._asgi import REQUEST_ID_KEY
from ._observed import ObservedRequestMiddleware

__all__ = [
    "SLOW_THRESHOLD_ATTR",
    "SlowRequestMiddleware",
    "SlowRequestReporter",
    "slow_request_threshold",
]

F = TypeVar("F", bound=Callable[..., Any])
SLOW_THRESHOLD_ATTR = "__flext_slow_request_threshold__"
_UNSEEN = object()


def slow_request_threshold(seconds: float | None) -> Callable[[F], F]:
    """Give one route its own threshold (None: never report it as slow).

    Put it under the route decorator: ``@app.get("/export")`` then
    ``@slow_request_threshold(30)``.
    """

    def mark(endpoint: F) -> F:
        setattr(endpoint, SLOW_THRESHOLD_ATTR, seconds)
        return endpoint

    return mark


class SlowRequestReporter:
    """Report requests slower than ``threshold`` seconds (see module docstring).

    ``now`` is the injected clock's ``monotonic`` (None: the observed pass reuses its
    own timing, so a request costs no extra clock reading).
    """

    __slots__ = ("_counter", "_logger", "now", "threshold", "thresholds")

    def __init__(
        self,
        threshold: float,
        *,
        logger: Any,
        registry: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.threshold = threshold
        self._logger = logger
        self.now: Callable[[], float] | None = clock.monotonic if clock is not None else None
        self._counter = (
            Counter(
                "http_server_slow_requests",
                "HTTP server requests slower than their slow-request threshold.",
                ["route"],
                registry=registry,
            )
            if registry is not None
            else None
        )
        # id(route) -> its threshold (id(None): no route); routes live as long as the app.
        # The observed pass reads it to skip the call for requests under the threshold.
        self.thresholds: dict[int, float | None] = {}

    def check(self, scope: Scope, route: Any, template: str, seconds: float) -> None:
        """Report the finished request of ``scope`` if it took ``threshold`` or longer."""
        threshold: Any = self.thresholds.get(id(route), _UNSEEN)
        if threshold is _UNSEEN:
            endpoint = getattr(route, "endpoint", None)
            threshold = self.thresholds[id(route)] = getattr(
                endpoint, SLOW_THRESHOLD_ATTR, self.threshold
            )
        if threshold is None or seconds < threshold:
            return
        self._logger.warning(
            "slow request",
            request_id=scope.get(REQUEST_ID_KEY),
            method=scope["method"],
            route=template,
            duration_ms=round(seconds * 1000.0, 3),
            threshold_ms=round(threshold * 1000.0, 3),
        )
        if self._counter is not None:
            self._counter.labels(template).inc()


class SlowRequestMiddleware(ObservedRequestMiddleware):
    """Report requests slower than ``threshold`` seconds (see module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        threshold: float,
        logger: Any,
        registry: Any = None,
        clock: Clock | None = None,
    ) -> None:
        reporter = SlowRequestReporter(threshold, logger=logger, registry=registry, clock=clock)
        super().__init__(app, slow_requests=reporter)
        self.threshold = threshold
