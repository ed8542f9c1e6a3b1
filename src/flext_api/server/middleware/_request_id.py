"""Request IDs: validate or generate one per request.

An inbound ``X-Request-ID`` is kept only when it matches ``[A-Za-z0-9._:-]{1,128}``
(UUIDs, ULIDs, hex, the ``host:pid:n`` style) and appears once; anything else - too
long, CR/LF, spaces, quotes, non-ASCII, two headers - is replaced by a fresh UUID4 (32
hex digits) rather than trusted, because the ID is echoed in a response header and
written into every log line (asgi-correlation-id also replaces; fapilog and
nexios_contrib trust it verbatim). A well-formed W3C ``traceparent`` is read alongside.

The middleware that exposes them is :class:`~._observed.ObservedRequestMiddleware`.
"""

from __future__ import annotations

import os
import re

from starlette.types import Scope

__all__ = ["REQUEST_ID_PATTERN", "new_request_id", "read_request_id"]

REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits (``uuid4().hex``, without building a UUID object)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def read_request_id(scope: Scope, header: bytes) -> tuple[str, bytes, str | None]:
    """``(request_id, encoded_id, traceparent_or_None)`` for the request in ``scope``."""
    inbound = traceparent = None
    for name, value in scope["headers"]:
        if name == header:
            inbound = value if inbound is None else b""  # two IDs: trust neither
        elif name == b"traceparent":
            traceparent = value
    if inbound is not None and REQUEST_ID_PATTERN.fullmatch(inbound):
        encoded = inbound
        request_id = inbound.decode("ascii")
    else:
        request_id = new_request_id()
        encoded = request_id.encode("ascii")
    trace = (
        traceparent.decode("ascii")
        if traceparent is not None and _TRACEPARENT.fullmatch(traceparent)
        else None
    )
    return request_id, encoded, trace
