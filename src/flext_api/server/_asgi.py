"""Small raw-ASGI helpers shared by the middlewares (no framework objects on the hot path).

Scope keys written by the stack (namespaced with ``flext.`` so they never clash):

- ``flext.request_id``: the request's ID, set by the request-ID middleware; read by the
  error middleware and problem responses after the contextvar has been reset.
- ``flext.send``: the innermost response-decorating ``send`` so far. Every middleware
  that adds response headers registers its wrapped ``send`` here; the outermost error
  middleware sends its 500 through it, so a crash still gets the request ID, security,
  CORS and timing headers (the failure asgi-correlation-id#19 describes, where the 500
  is built outside every user middleware).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Message, Scope, Send

__all__ = [
    "REQUEST_ID_KEY",
    "OwnedHeaders",
    "SEND_KEY",
    "UNMATCHED_ROUTE",
    "escaped_status",
    "mutable_headers",
    "register_send",
    "route_template",
]

REQUEST_ID_KEY = "flext.request_id"
SEND_KEY = "flext.send"
UNMATCHED_ROUTE = "<unmatched>"


def register_send(scope: Scope, send: Send) -> Send:
    """Record ``send`` as the innermost decorating send (see module docstring)."""
    scope[SEND_KEY] = send
    return send


class OwnedHeaders(list[tuple[bytes, bytes]]):
    """A header list the stack made itself, so later layers may append in place."""

    __slots__ = ()


def mutable_headers(message: Message) -> list[tuple[bytes, bytes]]:
    """The response-start message's header list, copied once per response.

    The first middleware to add a header copies the list (a handler may hand out a
    shared ``Response`` whose raw headers must not grow); the others append in place.
    """
    headers = message.get("headers")
    if type(headers) is OwnedHeaders:
        return headers
    owned = OwnedHeaders(headers or ())
    message["headers"] = owned
    return owned


def escaped_status(exc: Exception) -> int:
    """The status the error middleware will answer for ``exc`` escaping the app."""
    return exc.status_code if isinstance(exc, HTTPException) else 500


def route_template(scope: Scope) -> str | None:
    """The matched route's path template (``/items/{item_id}``), or None if none matched."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else None
