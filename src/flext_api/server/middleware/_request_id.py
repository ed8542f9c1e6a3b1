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


# uuid.UUID(version=4): clear the version nibble and the variant bits, then set them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits (``uuid4().hex``, without building a UUID object)."""
    return "%032x" % (int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET)


def read_request_id(scope: Scope, header: bytes) -> tuple[str, bytes, str | None]:
    """``(request_id, encoded_id, traceparent_or_None)`` for the request in ``scope``."""
    raw = scope["headers"]
    headers = dict(raw)  # one C-level pass; the last of repeated names wins
    inbound = headers.get(header)
    if inbound is not None and sum(1 for name, _ in raw if name == header) > 1:
        inbound = None  # two IDs: trust neither
    if inbound is not None and REQUEST_ID_PATTERN.fullmatch(inbound):
        encoded = inbound
        request_id = inbound.decode("ascii")
    else:
        request_id = new_request_id()
        encoded = request_id.encode("ascii")
    traceparent = headers.get(b"traceparent")
    trace = (
        traceparent.decode("ascii")
        if traceparent is not None and _TRACEPARENT.fullmatch(traceparent)
        else None
    )
    return request_id, encoded, trace
