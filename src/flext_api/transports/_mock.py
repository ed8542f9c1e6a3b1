"""``MockTransport(handler)``: answer requests from a function, for unit tests of logic.

The handler takes an :class:`HttpRequest` and returns an :class:`HttpResponse` (or an
awaitable of one). It may raise a :class:`FlextApiError` to simulate a transport
failure; an ``OSError`` it raises is translated like a real socket error. Streaming
works: the response body is served as one chunk.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from ._base import map_os_error, transport_error

__all__ = ["MockHandler", "MockTransport"]

MockHandler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport:
    """A transport whose answers come from ``handler``; records every request sent."""

    name = "mock"

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self._in_use = 0
        self.closed = False

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Call the handler; see :class:`~flext_api.transports.Transport`."""
        if self.closed:
            raise FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "transport is closed")
        if request.stream is not None:
            # The handler sees the body as bytes; the caller's request keeps its one-shot
            # stream (now consumed), so replay rules behave as with a real transport.
            body = b"".join([chunk async for chunk in request.stream])
            request = request.copy()
            request.content, request.stream = body, None
        self.requests.append(request)
        try:
            out: Any = self.handler(request)
            if inspect.isawaitable(out):
                out = await out
        except FlextApiError:
            raise
        except OSError as exc:
            code = map_os_error(exc, connecting=True)
            raise transport_error(code, f"{code.value}: {exc}", request, exc) from exc
        if not isinstance(out, HttpResponse):
            raise TypeError(f"MockTransport handler must return HttpResponse, got {type(out)!r}")
        out.request = out.request or request
        out.url = out.url or request.url
        if stream:
            self._in_use += 1
            if out._stream is None:
                body = out._content or b""
                out._content = None
                out._stream = _one_chunk(body)
            # A handler's own stream is served as it is (it was replaced by an empty body).
            out._close = functools.partial(self._release, out._close)
        elif out._stream is not None:
            # A handler answered with a stream: read it, as a real transport reads a
            # buffered body (its content was left unread, so every read of it failed).
            await out.aread()
        return out

    async def _release(self, close: Callable[[], Awaitable[None]] | None) -> None:
        self._in_use -= 1
        if close is not None:
            await close()

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True

    def stats(self) -> dict[str, Any]:
        """Streams still open count as in use."""
        return {
            "transport": self.name,
            "max_connections": 0,
            "in_use": self._in_use,
            "waiting": 0,
            "idle": 0,
        }

    def __repr__(self) -> str:
        return f"<MockTransport [{len(self.requests)} requests]>"


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body
