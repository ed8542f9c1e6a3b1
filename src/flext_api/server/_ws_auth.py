"""The factory's auth for any connection: HTTP requests and WebSocket upgrades.

``require_auth`` is a FastAPI dependency on ``Request``; a WebSocket route has no
``Request``, so the upgrade request's headers are checked here, with the same
:class:`~flext_api.server.Authenticator` (bearer JWT or ``X-API-Key``; never the query
string). A refused upgrade is closed before it is accepted — the client sees the
handshake fail with 403 — with close code 1008 (policy violation) for servers that
accept first.

A WebSocket authenticated with a JWT does not outlive the token (Hasura's rule): at its
``exp`` (plus ``jwt_leeway``, as the check of a request allows) the server closes it with
code 4403 and the reason ``token expired`` (``graphql-ws`` clients take 4403 as
retriable and reconnect, with a fresh token). An app waiting in ``receive`` sees the
client disconnect at that instant; one that is not (a handler that only sends) is
closed at its next send. Nothing the app sends after that instant goes out: the send
raises ``WebSocketDisconnect`` (1006), as to a client that left. :func:`close_at_expiry`
does this for every WebSocket the factory's stack serves (the request gate applies it);
it costs nothing until a JWT with an ``exp`` authenticates the connection. An API key
does not expire.

    @app.websocket("/ws")
    async def feed(ws: WebSocket, user: Principal = Depends(require_websocket_auth())):
        await ws.accept()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from fastapi import WebSocket, WebSocketException
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send

from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig

from ._auth import Authenticator, Principal

__all__ = [
    "EXPIRES_AT_KEY",
    "TOKEN_EXPIRED_CLOSE",
    "auth_configured",
    "authenticate_connection",
    "close_at_expiry",
    "expires_at",
    "note_expiry",
    "require_websocket_auth",
]

_POLICY_VIOLATION = 1008
# graphql-ws's "Forbidden": its client retries it (4401 "Unauthorized" is fatal there).
TOKEN_EXPIRED_CLOSE = 4403
# The scope key holding when the connection's credentials stop being valid (epoch seconds).
EXPIRES_AT_KEY = "flext.auth.expires_at"


def auth_configured(config: AuthConfig) -> bool:
    """True when the app accepts some credential (a JWT key source or an API key)."""
    return bool(config.jwt_enabled or config.api_keys or config.api_key_hashes)


async def authenticate_connection(conn: HTTPConnection, scopes: Iterable[str] = ()) -> Principal:
    """The principal of ``conn``; raises 401/403 (HTTP) or a 1008 close (WebSocket)."""
    state = getattr(conn.app.state, "flext", None)
    authenticator = getattr(state, "authenticator", None)
    if not isinstance(authenticator, Authenticator):
        raise ConfigError("authentication needs an app built by create_fastapi_app")
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    api_key = conn.headers.get("x-api-key") or None
    try:
        principal = await authenticator.authenticate(token, api_key)
        needed = frozenset(scopes)
        if not needed <= principal.scopes:
            raise HTTPException(403, "The credentials lack a required scope.")
    except HTTPException as exc:
        if isinstance(conn, WebSocket):
            raise WebSocketException(_POLICY_VIOLATION, str(exc.detail)) from exc
        raise
    conn.state.principal = principal
    if isinstance(conn, WebSocket):
        note_expiry(conn.scope, expires_at(principal, authenticator.config.jwt_leeway))
    return principal


def note_expiry(scope: Scope, until: float | None) -> None:
    """Record that the connection of ``scope`` is valid until ``until`` (the earliest of
    the credentials that authenticated it wins; None: these do not expire)."""
    if until is not None:
        known = scope.get(EXPIRES_AT_KEY)
        scope[EXPIRES_AT_KEY] = until if known is None else min(known, until)


def expires_at(principal: Principal, leeway: float) -> float | None:
    """When ``principal``'s credentials expire (epoch seconds), or None if they do not."""
    if principal.method != "jwt":
        return None
    exp = principal.claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None  # the verifier required and checked it when it is configured to
    return float(exp) + leeway


class _TokenExpiredError(OSError):
    """A send on a WebSocket closed because its token expired (Starlette: 1006)."""


def close_at_expiry(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """``receive`` and ``send`` of a WebSocket that closes when its token expires.

    The expiry is read from ``scope[EXPIRES_AT_KEY]`` (set by :func:`authenticate_connection`)
    once the connection is accepted; without it, both pass straight through.
    """
    accepted = False
    closed = False

    async def expire() -> Message:
        nonlocal closed
        if not closed:
            closed = True
            await send({"type": "websocket.close", "code": TOKEN_EXPIRED_CLOSE,
                        "reason": "token expired"})  # fmt: skip
        return {"type": "websocket.disconnect", "code": TOKEN_EXPIRED_CLOSE}

    async def expiring_receive() -> Message:
        until = scope.get(EXPIRES_AT_KEY) if accepted else None
        if until is None:
            return await receive()
        if closed:
            return {"type": "websocket.disconnect", "code": TOKEN_EXPIRED_CLOSE}
        remaining = until - time.time()
        if remaining > 0:
            try:
                async with asyncio.timeout(remaining):
                    return await receive()
            except TimeoutError:
                pass  # the token expired while the client was quiet
        return await expire()

    async def expiring_send(message: Message) -> None:
        nonlocal accepted
        if closed:
            if message["type"] == "websocket.close":
                return  # the app closing what the expiry closed already
            raise _TokenExpiredError("the WebSocket was closed: its token expired")
        kind = message["type"]
        if kind == "websocket.accept":
            accepted = True
        elif kind == "websocket.send":
            until = scope.get(EXPIRES_AT_KEY)
            if until is not None and time.time() >= until:
                await expire()
                raise _TokenExpiredError("the WebSocket was closed: its token expired")
        await send(message)

    return expiring_receive, expiring_send


def require_websocket_auth(
    *, scopes: Iterable[str] = ()
) -> Callable[[WebSocket], Awaitable[Principal]]:
    """A WebSocket-route dependency returning the upgrade request's :class:`Principal`."""
    needed = tuple(scopes)

    async def dependency(websocket: WebSocket) -> Principal:
        return await authenticate_connection(websocket, needed)

    return dependency
