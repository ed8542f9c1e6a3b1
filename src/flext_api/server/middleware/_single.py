"""The single-purpose middlewares: :class:`ObservedRequestMiddleware` with one concern on.

For composing your own stack, or wrapping an app that is not built by the factory; the
factory itself uses one :class:`ObservedRequestMiddleware` with every concern on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp

from flext_api._redact import DEFAULT_SENSITIVE_HEADERS, DEFAULT_SENSITIVE_QUERY_PARAMS

from .._metrics import ServerMetrics
from ._access_log import AccessLogger
from ._observed import InFlightTracker, ObservedRequestMiddleware
from ._security_headers import SecurityHeaderSet

__all__ = [
    "AccessLogMiddleware",
    "InFlightMiddleware",
    "MetricsMiddleware",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "TimingMiddleware",
]


class RequestIdMiddleware(ObservedRequestMiddleware):
    """Give every HTTP request a trustworthy ID, exposed while it runs and echoed."""

    def __init__(self, app: ASGIApp, *, header: str = "X-Request-ID") -> None:
        super().__init__(app, request_id_header=header)


class InFlightMiddleware(ObservedRequestMiddleware):
    """Report every HTTP request's start and end to ``tracker`` (graceful drain)."""

    def __init__(self, app: ASGIApp, *, tracker: InFlightTracker) -> None:
        super().__init__(app, tracker=tracker)


class AccessLogMiddleware(ObservedRequestMiddleware):
    """Log one record per HTTP request (see :mod:`._access_log`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: Any,
        sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS,
        sensitive_query_params: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS,
        log_headers: bool = False,
        skip_paths: frozenset[str] = frozenset(),
    ) -> None:
        access_log = AccessLogger(
            logger,
            sensitive_headers=sensitive_headers,
            sensitive_query_params=sensitive_query_params,
            log_headers=log_headers,
            skip_paths=skip_paths,
        )
        super().__init__(app, access_log=access_log)


class TimingMiddleware(ObservedRequestMiddleware):
    """Add ``X-Response-Time: 1.234ms`` (to the response start) to every HTTP response."""

    def __init__(self, app: ASGIApp, *, header: str = "X-Response-Time") -> None:
        super().__init__(app, timing_header=header)


class MetricsMiddleware(ObservedRequestMiddleware):
    """Observe duration, status and route template of each HTTP request."""

    def __init__(
        self, app: ASGIApp, *, metrics: ServerMetrics, exclude_paths: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(app, metrics=metrics, metrics_exclude_paths=exclude_paths)


class SecurityHeadersMiddleware(ObservedRequestMiddleware):
    """Append pre-encoded security headers the response does not already have."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str | None],
        docs_paths: Iterable[str] = (),
        docs_csp: str | None = None,
    ) -> None:
        security = SecurityHeaderSet(headers, docs_paths=docs_paths, docs_csp=docs_csp)
        super().__init__(app, security_headers=security)
