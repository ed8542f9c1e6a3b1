"""The factory's auth for any connection: HTTP requests and WebSocket upgrades.

``require_auth`` is a FastAPI dependency on ``Request``; a WebSocket route has no
``Request``, so the upgrade request's headers are checked here, with the same
:class:`~flext_api.server.Authenticator` (bearer JWT or ``X-API-Key``; never the query
string). A refused upgrade is closed before it is accepted — the client sees the
handshake fail with 403 — with close code 1008 (policy violation) for servers that
accept first.

    @app.websocket("/ws")
    async def feed(ws: WebSocket, user: Principal = Depends(require_websocket_auth())):
        await ws.accept()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import WebSocket, WebSocketException
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig

from ._auth import Authenticator, Principal

__all__ = ["auth_configured", "authenticate_connection", "require_websocket_auth"]

_POLICY_VIOLATION = 1008


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
    return principal


def require_websocket_auth(
    *, scopes: Iterable[str] = ()
) -> Callable[[WebSocket], Awaitable[Principal]]:
    """A WebSocket-route dependency returning the upgrade request's :class:`Principal`."""
    needed = tuple(scopes)

    async def dependency(websocket: WebSocket) -> Principal:
        return await authenticate_connection(websocket, needed)

    return dependency
