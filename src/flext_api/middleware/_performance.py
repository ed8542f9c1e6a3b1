"""``PerformanceMonitoringMiddleware``: time each request, tag the response, flag slow ones.

By default it stamps ``request.start_time`` and ``request.request_id`` (an incoming
``X-Request-ID`` is kept), and on the way out adds ``X-Response-Time`` and
``X-Request-ID`` and logs ``"Slow request detected"`` past :attr:`slow_request_ms`.
Subclasses (the FLEXT guide's ``DetailedPerformanceMiddleware``) override either hook
to report to their own metrics client. The app factory already measures every request
for Prometheus (``/metrics``); this class is for what a team adds on top.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from .._result import FlextResult
from ._base import FlextApiMiddleware, FlextRequest, FlextResponse

__all__ = ["PerformanceMonitoringMiddleware"]


class PerformanceMonitoringMiddleware(FlextApiMiddleware):
    """Request timing with ``X-Response-Time`` / ``X-Request-ID`` headers."""

    #: Requests slower than this (milliseconds) are logged as slow.
    slow_request_ms: ClassVar[float] = 1000.0

    async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Stamp the start time and the request id."""
        request.start_time = time.time()
        request.request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())
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
