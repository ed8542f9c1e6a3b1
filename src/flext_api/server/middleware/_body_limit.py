"""Request body limit (default 10 MiB): 413 before the handler, also for chunked bodies.

Two checks, as Litestar does (research/server.md §2.3): a ``Content-Length`` above the
limit is answered with 413 at once, before the app runs or a byte of body is read; and
the bytes actually received are counted, so a chunked body (no ``Content-Length``) or a
lying one is stopped as soon as the count passes the limit. The second case raises
:class:`BodyTooLargeError` (an ``HTTPException(413)``) from ``receive``: FastAPI re-raises
it while reading the body, before the endpoint is called, and the exception handler turns
it into the usual problem response.

Starlette >= 1.6 has a ``max_body_size`` of its own (plain-text 413, off by default);
this layer exists so the default is on and the answer is problem+json.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._problem import send_problem

__all__ = ["BodyLimitMiddleware", "BodyTooLargeError"]

_DETAIL = "The request body is larger than the {limit} bytes this service accepts."


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once the streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _DETAIL.format(limit=limit))


class BodyLimitMiddleware:
    """Reject request bodies larger than ``max_body_size`` bytes with 413."""

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self._limit = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await send_problem(scope, send, 413, detail=_DETAIL.format(limit=limit))
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited_receive, send)
