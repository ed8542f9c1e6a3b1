"""``X-Response-Time``: milliseconds from entering the stack to the response start.

A plain header rather than W3C ``Server-Timing`` because that is what load balancers and
people grep for; the full duration (to the last body byte) is in the access log and the
duration histogram.
"""

from __future__ import annotations

from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._asgi import mutable_headers, register_send

__all__ = ["TimingMiddleware"]


class TimingMiddleware:
    """Add ``X-Response-Time: 1.234ms`` to every HTTP response."""

    def __init__(self, app: ASGIApp, *, header: str = "X-Response-Time") -> None:
        self.app = app
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()

        async def send_with_time(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (perf_counter() - start) * 1000.0
                mutable_headers(message).append((self._header, b"%.3fms" % elapsed))
            await send(message)

        await self.app(scope, receive, register_send(scope, send_with_time))
