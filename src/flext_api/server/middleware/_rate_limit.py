"""Apply the default per-client rate limit before the app runs (only when one is set).

A refused request costs one storage hit and no handler work: 429 problem+json with
``Retry-After`` and the ``RateLimit-*`` headers. Allowed responses get the ``RateLimit-*``
headers too, unless a named bucket (the :func:`~flext_api.server.rate_limit` dependency)
already put its own on the response. The check runs in the request gate
(:mod:`._gate`); :class:`RateLimitMiddleware` is that gate with only it on.
"""

from __future__ import annotations

from limits import RateLimitItem
from starlette.types import Message, Scope, Send

from .._asgi import mutable_headers, register_send
from .._problem import send_problem
from .._ratelimit import RateLimitService

__all__ = ["apply_default_limit"]


async def apply_default_limit(
    service: RateLimitService, limit: RateLimitItem, scope: Scope, send: Send, *, headers: bool
) -> Send | None:
    """Hit ``limit`` for the client of ``scope``.

    Returns None when the request was refused (the 429 is sent), else the ``send`` to
    answer through (``send`` itself, or a wrapper adding the ``RateLimit-*`` headers).
    """
    client = service.clients.client_ip(scope)
    decision = await service.hit("default", limit, client)
    lines = decision.header_lines() if headers else []
    if not decision.allowed:
        await send_problem(
            scope,
            send,
            429,
            detail="Too many requests; retry later.",
            headers=[(b"retry-after", b"%d" % decision.retry_after), *lines],
        )
        return None
    if not lines:
        return send

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers = mutable_headers(message)
            if all(name.lower() != b"ratelimit-limit" for name, _ in response_headers):
                response_headers.extend(lines)
        await send(message)

    return register_send(scope, send_with_limits)
