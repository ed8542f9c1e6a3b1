"""Request ID: validate or generate, expose everywhere, echo on every response.

An inbound ``X-Request-ID`` is kept only when it matches ``[A-Za-z0-9._:-]{1,128}``
(UUIDs, ULIDs, hex, the ``host:pid:n`` style) and appears once; anything else - too
long, CR/LF, spaces, quotes, non-ASCII, two headers - is replaced by a fresh UUID4 (32
hex digits) rather than trusted, because the ID is echoed in a response header and
written into every log line (asgi-correlation-id also replaces; fapilog and
nexios_contrib trust it verbatim).

While the request runs the ID is in :data:`flext_api._context.request_id_var` (read by
:class:`~flext_api.FlextApiClient` to propagate it), in structlog's contextvars (so every
log line of the request carries ``request_id``) and in the scope; a well-formed W3C
``traceparent`` is exposed the same way.
"""

from __future__ import annotations

import os
import re

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._context import request_id_var, traceparent_var

from .._asgi import REQUEST_ID_KEY, mutable_headers, register_send

__all__ = ["REQUEST_ID_PATTERN", "RequestIdMiddleware", "new_request_id"]

REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_bind = structlog.contextvars.bind_contextvars
_reset = structlog.contextvars.reset_contextvars


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits (``uuid4().hex``, without building a UUID object)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class RequestIdMiddleware:
    """Give every HTTP request a trustworthy ID (see module docstring)."""

    def __init__(self, app: ASGIApp, *, header: str = "X-Request-ID") -> None:
        self.app = app
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbound = traceparent = None
        for name, value in scope["headers"]:
            if name == self._header:
                inbound = value if inbound is None else b""  # two IDs: trust neither
            elif name == b"traceparent":
                traceparent = value
        if inbound is not None and REQUEST_ID_PATTERN.fullmatch(inbound):
            encoded = inbound
            request_id = inbound.decode("ascii")
        else:
            request_id = new_request_id()
            encoded = request_id.encode("ascii")
        scope[REQUEST_ID_KEY] = request_id
        header = (self._header, encoded)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable_headers(message).append(header)
            await send(message)

        register_send(scope, send_with_id)
        trace = (
            traceparent.decode("ascii")
            if traceparent is not None and _TRACEPARENT.fullmatch(traceparent)
            else None
        )
        id_token = request_id_var.set(request_id)
        # Each request runs in its own task, whose context starts without a traceparent.
        trace_token = traceparent_var.set(trace) if trace is not None else None
        log_tokens = _bind(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _reset(**log_tokens)
            if trace_token is not None:
                traceparent_var.reset(trace_token)
            request_id_var.reset(id_token)
