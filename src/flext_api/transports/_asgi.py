"""``ASGITransport(app)``: call an ASGI application in-process, no sockets.

For testing a service (for instance one built with ``create_fastapi_app``) through the
real client pipeline. The app's response is collected in full; an exception raised by
the app before the end of its response body becomes a ``PROTOCOL_ERROR`` unless
``raise_app_exceptions`` is set, as does an app that returns before the end of its body
or answers with a status outside 100-599. A URL it cannot put in a scope (a malformed
port) is ``INVALID_REQUEST``. The app's ``receive`` gives the request body, then
``http.disconnect`` only once the response is whole: the client stays for a streamed
answer (Starlette's ``StreamingResponse`` and SSE stop at a disconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .._errors import ErrorCode
from .._models import HttpRequest, HttpResponse
from ._base import check_status, transport_error

__all__ = ["ASGIApp", "ASGITransport"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class ASGITransport:
    """Send requests straight into an ASGI app.

    Args:
        app: the ASGI application.
        client: the ``(host, port)`` the app sees as the peer.
        raise_app_exceptions: re-raise an exception escaping the app (for debugging)
            instead of reporting ``PROTOCOL_ERROR``.
    """

    name = "asgi"

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: tuple[str, int] = ("127.0.0.1", 123),
        raise_app_exceptions: bool = False,
    ) -> None:
        self.app = app
        self.client = client
        self.raise_app_exceptions = raise_app_exceptions

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Run the app for one request; see :class:`~flext_api.transports.Transport`."""
        try:
            parts = urlsplit(request.url)
            host = parts.hostname or "localhost"
            port = parts.port or (443 if parts.scheme == "https" else 80)
            headers = [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.raw()
            ]
            if "host" not in request.headers:
                headers.insert(0, (b"host", parts.netloc.encode("latin-1")))
            raw_path = (parts.path or "/").encode("latin-1")
            query = parts.query.encode("latin-1")
        except ValueError as exc:  # a malformed port or IPv6 literal, a character past Latin-1
            raise transport_error(
                ErrorCode.INVALID_REQUEST,
                f"invalid request on {request.method} {request.host}: {exc}",
                request,
                exc,
            ) from exc
        if request.stream is not None:
            body = b"".join([chunk async for chunk in request.stream])
        else:
            body = request.content or b""
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": parts.scheme,
            "path": unquote(parts.path) or "/",
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": self.client,
            "server": (host, port),
            "extensions": {},
        }
        sent_body = False
        status: int | None = None
        # The app's last body message said no more would follow (ASGI's more_body=False).
        complete = False
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        # The client is there until the response is whole: a disconnect before that
        # made streaming apps (Starlette's StreamingResponse, SSE) stop at once.
        answered = asyncio.Event()

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                )
            elif message["type"] == "http.response.body":
                nonlocal complete
                chunks.append(bytes(message.get("body", b"")))
                complete = not message.get("more_body", False)
                if complete:
                    answered.set()

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if self.raise_app_exceptions:
                raise
            # Raised after the response started, before its end: the body is cut short
            # (it was returned as a success holding the part sent so far). Raised once
            # the body is whole (a failed background task): the response stands.
            if status is None or not complete:
                when = "before responding" if status is None else "before the end of its body"
                raise transport_error(
                    ErrorCode.PROTOCOL_ERROR,
                    f"ASGI app raised {type(exc).__name__} {when}",
                    request,
                    exc,
                ) from exc
        if status is None:
            raise transport_error(
                ErrorCode.PROTOCOL_ERROR, "ASGI app returned without a response", request, None
            )
        if not complete:
            raise transport_error(
                ErrorCode.PROTOCOL_ERROR,
                "ASGI app returned before the end of its body (more_body was never False)",
                request,
                None,
            )
        check_status(status, request)
        content = b"".join(chunks)
        response = HttpResponse(
            status,
            headers=response_headers,
            url=request.url,
            request=request,
            content=None if stream else content,
            stream=_one_chunk(content) if stream else None,
        )
        return response

    async def aclose(self) -> None:
        """Nothing to release."""

    def stats(self) -> dict[str, Any]:
        """An in-process transport has no pool."""
        return {"transport": self.name, "max_connections": 0, "in_use": 0, "waiting": 0, "idle": 0}

    def __repr__(self) -> str:
        return f"<ASGITransport app={getattr(self.app, '__name__', type(self.app).__name__)}>"


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body
