"""RequestIdPropagation: outgoing calls carry the ID of the server request they serve.

Inside a flext-api server request, the request-ID middleware has stored the inbound
``X-Request-ID`` (and a valid inbound ``traceparent``) in :mod:`flext_api._context`.
This stage copies them onto outgoing requests that do not set their own, so the logs
of every service a request touches share one ID (asgi-correlation-id#46). Outside a
server request it does nothing.

The ``traceparent`` copied here is the inbound one, unchanged: with
:class:`~._tracing.TracingPlugin` in the pipeline, each attempt's own span context
replaces it (the attempt stage runs later, innermost).
"""

from __future__ import annotations

import structlog

from ..._context import TRACEPARENT_HEADER, propagation_headers
from ..._errors import InvalidRequestError
from ..._models import HttpRequest, HttpResponse, validate_header
from ..._result import FlextResult
from .._plugin import CallNext, FlextApiPlugin

__all__ = ["RequestIdPropagation"]

_log = structlog.get_logger("flext_api.client.observability")


class RequestIdPropagation(FlextApiPlugin):
    """Add the current server request's ``X-Request-ID`` (and ``traceparent``).

    >>> RequestIdPropagation(traceparent=False)
    <RequestIdPropagation traceparent=False>

    Args:
        traceparent: also pass the inbound W3C ``traceparent`` through.
    """

    name = "request_id"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(self, *, traceparent: bool = True) -> None:
        self.traceparent = traceparent

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Send ``request`` with the propagation headers it does not already carry."""
        wanted = propagation_headers()
        if not self.traceparent:
            wanted.pop(TRACEPARENT_HEADER, None)
        missing = [(k, v) for k, v in wanted.items() if k not in request.headers]
        if not missing:
            return await call_next(request)
        out = request.copy()
        for name, value in missing:
            try:
                validate_header(name, value)
            except InvalidRequestError:
                # Set by code outside the server middleware (request_context("...")):
                # a bad value is dropped, never sent, and never shown (it may be hostile).
                _log.warning("request_id.invalid_value_dropped", header=name)
                continue
            out.headers.set(name, value)
        return await call_next(out)

    def __repr__(self) -> str:
        return f"<RequestIdPropagation traceparent={self.traceparent}>"
