"""``PerformanceMonitoringMiddleware``: time each request, tag the response, flag slow ones.

By default it stamps ``request.start_time`` and ``request.request_id`` - the request's one
ID: in an app of :func:`~flext_api.server.create_fastapi_app` the ID the factory validated
(the one in its log and problem bodies); elsewhere an incoming ``X-Request-ID`` that
passes the same check (``[A-Za-z0-9._:-]{1,128}``, once), else a new one - and on the
way out adds ``X-Response-Time`` and ``X-Request-ID`` (in a factory app its own headers
replace these, so each is sent once) and logs ``"Slow request detected"`` past
:attr:`slow_request_ms`.
Subclasses (the FLEXT guide's ``DetailedPerformanceMiddleware``) override either hook
to report to their own metrics client. The app factory already measures every request
for Prometheus (``/metrics``); this class is for what a team adds on top.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from .._context import get_request_id
from .._errors import ConfigError
from .._numbers import is_real
from .._result import FlextResult
from ..server._asgi import REQUEST_ID_KEY
from ..server.middleware._request_id import REQUEST_ID_PATTERN, new_request_id
from ._base import FlextApiMiddleware, FlextRequest, FlextResponse

__all__ = ["PerformanceMonitoringMiddleware"]


class PerformanceMonitoringMiddleware(FlextApiMiddleware):
    """Request timing with ``X-Response-Time`` / ``X-Request-ID`` headers."""

    #: Requests slower than this (milliseconds) are logged as slow.
    slow_request_ms: ClassVar[float] = 1000.0

    def _check_settings(self) -> None:
        super()._check_settings()
        slow = self.slow_request_ms
        if not is_real(slow) or math.isnan(slow):
            # NaN compares false with every duration: no request would ever be "slow".
            raise ConfigError(
                f"{type(self).__name__}.slow_request_ms must be a number of milliseconds, "
                f"got {slow!r}"
            )

    async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Stamp the start time and the request id."""
        request.start_time = time.time()
        request.request_id = _request_id(request)
        return FlextResult.ok({})

    async def process_response(
        self, request: FlextRequest, response: FlextResponse
    ) -> FlextResult[dict[str, Any]]:
        """Add the timing headers; log a slow request."""
        duration_ms = (time.time() - request.start_time) * 1000
        response.headers.update(
            {"X-Response-Time": f"{duration_ms:.2f}ms", "X-Request-ID": request.request_id}
        )
        if duration_ms > self.slow_request_ms:
            self.logger.warning(
                "Slow request detected",
                request_id=request.request_id,
                duration_ms=duration_ms,
                path=request.path,
                method=request.method,
            )
        return FlextResult.ok({})


def _request_id(request: FlextRequest) -> str:
    """The request's one ID (see module docstring); never an unchecked inbound value."""
    known = request.scope.get(REQUEST_ID_KEY) or get_request_id()
    if isinstance(known, str):
        return known
    inbound = request.headers.getlist("X-Request-ID")
    if len(inbound) == 1 and REQUEST_ID_PATTERN.fullmatch(inbound[0].encode("latin-1")):
        return inbound[0]
    return new_request_id()
