"""Apply the default per-client rate limit before the app runs (installed only when set).

A refused request costs one storage hit and no handler work: 429 problem+json with
``Retry-After`` and the ``RateLimit-*`` headers. Allowed responses get the ``RateLimit-*``
headers too, unless a named bucket (the :func:`~flext_api.server.rate_limit` dependency)
already put its own on the response.
"""

from __future__ import annotations

from limits import RateLimitItem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._asgi import mutable_headers, register_send
from .._problem import send_problem
from .._ratelimit import RateLimitService

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    """Enforce ``default_limit`` per client and emit its ``RateLimit-*`` headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: RateLimitService,
        default_limit: RateLimitItem,
        exempt_paths: frozenset[str] = frozenset(),
        headers: bool = True,
    ) -> None:
        self.app = app
        self._service = service
        self._default = default_limit
        self._exempt = exempt_paths
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        client = self._service.clients.client_ip(scope)
        decision = await self._service.hit("default", self._default, client)
        lines = decision.header_lines() if self._headers else []
        if not decision.allowed:
            await send_problem(
                scope,
                send,
                429,
                detail="Too many requests; retry later.",
                headers=[(b"retry-after", b"%d" % decision.retry_after), *lines],
            )
            return
        if not lines:
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = mutable_headers(message)
                if all(name.lower() != b"ratelimit-limit" for name, _ in headers):
                    headers.extend(lines)
            await send(message)

        await self.app(scope, receive, register_send(scope, send_with_limits))
