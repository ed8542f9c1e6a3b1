"""Slow requests: one warning per request over a threshold, and a counter.

A request slower than the threshold (default 1 s; per route with
:func:`~flext_api.server.slow_request_threshold`) logs one ``slow request`` warning
carrying the request ID, the route *template* (never the raw path) and the duration, and
increments ``http_server_slow_requests_total{route}`` when metrics are on. The duration
runs from entering this layer to the end of the app's call, i.e. to the last body byte
of an ordinary response. The clock is injectable, so tests decide what "slow" is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from ..._clock import Clock, get_clock
from .._asgi import REQUEST_ID_KEY, UNMATCHED_ROUTE, route_template

__all__ = ["SLOW_THRESHOLD_ATTR", "SlowRequestMiddleware", "slow_request_threshold"]

F = TypeVar("F", bound=Callable[..., Any])
SLOW_THRESHOLD_ATTR = "__flext_slow_request_threshold__"


def slow_request_threshold(seconds: float | None) -> Callable[[F], F]:
    """Give one route its own threshold (None: never report it as slow).

    Put it under the route decorator: ``@app.get("/export")`` then
    ``@slow_request_threshold(30)``.
    """

    def mark(endpoint: F) -> F:
        setattr(endpoint, SLOW_THRESHOLD_ATTR, seconds)
        return endpoint

    return mark


class SlowRequestMiddleware:
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
        self.app = app
        self.threshold = threshold
        self._logger = logger
        self._clock = get_clock(clock)
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        monotonic = self._clock.monotonic
        start = monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self._check(scope, monotonic() - start)

    def _check(self, scope: Scope, duration: float) -> None:
        threshold: float | None = self.threshold
        endpoint = getattr(scope.get("route"), "endpoint", None)
        if endpoint is not None:
            threshold = getattr(endpoint, SLOW_THRESHOLD_ATTR, threshold)
        if threshold is None or duration < threshold:
            return
        route = route_template(scope) or UNMATCHED_ROUTE
        self._logger.warning(
            "slow request",
            request_id=scope.get(REQUEST_ID_KEY),
            method=scope["method"],
            route=route,
            duration_ms=round(duration * 1000.0, 3),
            threshold_ms=round(threshold * 1000.0, 3),
        )
        if self._counter is not None:
            self._counter.labels(route).inc()
