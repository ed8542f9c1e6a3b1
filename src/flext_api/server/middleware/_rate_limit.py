"""Apply the default per-client rate limit before the app runs (only when one is set).

A refused request costs one storage hit and no handler work: 429 problem+json with
``Retry-After`` and the ``RateLimit-*`` headers. Allowed responses get the ``RateLimit-*``
headers too, unless a named bucket (the :func:`~flext_api.server.rate_limit` dependency)
already put its own on the response. The check runs in the request gate
(:mod:`._gate`); :class:`RateLimitMiddleware` is that gate with only it on.

A WebSocket handshake is a request too: it is one hit, and a refused one is answered 429
(with ``Retry-After``) through the ASGI denial-response extension when the server offers
it (uvicorn does), else closed before it is accepted (the server answers 403).
"""

from __future__ import annotations

from limits import RateLimitItem
from starlette.exceptions import HTTPException
from starlette.types import Message, Scope, Send

from .._asgi import mutable_headers, register_send
from .._problem import send_problem
from .._ratelimit import TOO_MANY_REQUESTS_DETAIL, RateLimitDecision, RateLimitService

__all__ = ["apply_default_limit", "websocket_within_limit"]

_TRY_AGAIN_LATER = 1013


async def apply_default_limit(
    service: RateLimitService, limit: RateLimitItem, scope: Scope, send: Send, *, headers: bool
) -> Send | None:
    """Hit ``limit`` for the client of ``scope``.

    Returns None when the request was refused (the 429 is sent), else the ``send`` to
    answer through (``send`` itself, or a wrapper adding the ``RateLimit-*`` headers).
    """
    decision = await service.hit_default(scope, limit)
    if not decision.allowed:
        await _too_many(scope, send, decision, headers=headers)
        return None
    if not headers:
        return send
    lines = decision.header_lines()

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers = mutable_headers(message)
            if all(name.lower() != b"ratelimit-limit" for name, _ in response_headers):
                response_headers.extend(lines)
        await send(message)

    return register_send(scope, send_with_limits)


async def websocket_within_limit(
    service: RateLimitService, limit: RateLimitItem, scope: Scope, send: Send, *, headers: bool
) -> bool:
    """Hit ``limit`` for the WebSocket handshake of ``scope``; False when it was refused
    (and answered: 429, or a close before the accept)."""
    answers_http = "websocket.http.response" in (scope.get("extensions") or {})

    async def denial(message: Message) -> None:  # the extension's names for them
        await send({**message, "type": "websocket." + message["type"]})

    try:
        decision = await service.hit_default(scope, limit)
    except HTTPException as exc:
        # The storage is down under fail_open=False: for a request the 503 problem is
        # answered by the stack; raised from a handshake it reached the server (a bare
        # 500 and a traceback).
        if answers_http:
            await send_problem(scope, denial, exc.status_code, detail=str(exc.detail),
                               headers=[(b"retry-after", b"1")])  # fmt: skip
        else:
            await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER})
        return False
    if decision.allowed:
        return True
    if answers_http:
        await _too_many(scope, denial, decision, headers=headers)
    else:
        await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER})
    return False


async def _too_many(
    scope: Scope, send: Send, decision: RateLimitDecision, *, headers: bool
) -> None:
    """The 429 problem of the refusal ``decision``, with ``Retry-After`` (and the
    ``RateLimit-*`` headers when ``headers``)."""
    lines = decision.header_lines() if headers else []
    await send_problem(
        scope,
        send,
        429,
        detail=TOO_MANY_REQUESTS_DETAIL,
        headers=[(b"retry-after", b"%d" % decision.retry_after), *lines],
    )
