"""Fault-server routes for auth tests (registered on import by fault_routes.py).

A small, real OAuth2 authorization server (client-credentials grant, RFC 6749 §4.4)
and a resource protected by its tokens, one independent "tenant" per path key so tests
do not share state:

``POST /oauth/{tenant}/token``
    Checks ``grant_type=client_credentials`` and the client's credentials: HTTP Basic
    with form-encoded id and secret (RFC 6749 §2.3.1), or ``client_id`` and
    ``client_secret`` in the form (both at once: ``invalid_request``). Issues
    ``at-{tenant}-{n}`` (n counts issued tokens) as the tenant's only valid token and
    echoes ``scope``. Query: ``expires_in=N`` (3600; ``0`` leaves ``expires_in`` out),
    ``delay=S`` (wait before answering, at most 5 s), ``refuse=ERROR`` (answer the
    OAuth error ``ERROR``: 401 for ``invalid_client``, else 400, with an
    ``error_description``).
``/oauth/{tenant}/protected``
    200 ``{"ok": true, "token": n, "method"}`` when the bearer token is the tenant's
    current, unexpired one; otherwise 401 with
    ``WWW-Authenticate: Bearer error="invalid_token"``.
``POST /oauth/{tenant}/revoke``
    Makes the current token invalid (server-side rotation): the next protected call
    answers 401.

Counting token requests: ``fault.hits("/oauth/{tenant}/token")``. The current token of
each tenant is kept per server in a weak mapping; ``reset()`` clears the counters (so
serials restart) but not this mapping, so tests use a unique tenant each.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import weakref
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote_plus

from tests.servers.fault_routes import route

if TYPE_CHECKING:
    from tests.servers.fault import FaultServer
    from tests.servers.http1 import Request, ResponseWriter

OAUTH_CLIENT_ID = "flext-test-client"
OAUTH_CLIENT_SECRET = "s3cr3t:+/= with spaces & more"
MAX_TOKEN_DELAY = 5.0

# server -> tenant -> (current token, monotonic expiry or None)
_TOKENS: weakref.WeakKeyDictionary[FaultServer, dict[str, tuple[str, float | None]]] = (
    weakref.WeakKeyDictionary()
)


def _tenants(server: FaultServer) -> dict[str, tuple[str, float | None]]:
    tenants = _TOKENS.get(server)
    if tenants is None:
        tenants = _TOKENS[server] = {}
    return tenants


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    user, _, password = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(user), unquote_plus(password)


async def _oauth_error(w: ResponseWriter, error: str, description: str) -> None:
    status = 401 if error == "invalid_client" else 400
    headers = [("Cache-Control", "no-store")]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Basic realm="fault"'))
    await w.send_json({"error": error, "error_description": description}, status, headers)


@route(r"/oauth/([^/]+)/token", methods={"POST"})
async def oauth_token(req: Request, w: ResponseWriter) -> None:
    tenant = req.path_params[0]
    delay = min(req.float_param("delay", 0.0), MAX_TOKEN_DELAY)
    if delay > 0:
        await asyncio.sleep(delay)
    refuse = req.param("refuse")
    if refuse:
        await _oauth_error(w, refuse, f"refused on request for tenant {tenant}")
        return
    form = parse_qs(req.body.decode("utf-8", errors="replace"), keep_blank_values=True)
    if form.get("grant_type") != ["client_credentials"]:
        await _oauth_error(w, "unsupported_grant_type", "only client_credentials is served")
        return
    basic = _basic_credentials(req.header("authorization"))
    in_form = "client_secret" in form or "client_id" in form
    if basic is not None and in_form:
        await _oauth_error(w, "invalid_request", "more than one client authentication method")
        return
    if basic is None:
        basic = (form.get("client_id", [""])[0], form.get("client_secret", [""])[0])
    if basic != (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET):
        await _oauth_error(w, "invalid_client", "client authentication failed")
        return
    serial = req.server.bump(f"oauth-token:{tenant}")
    token = f"at-{tenant}-{serial}"
    expires_in = req.int_param("expires_in", 3600)
    expiry = time.monotonic() + expires_in if expires_in > 0 else None
    _tenants(req.server)[tenant] = (token, expiry)
    payload: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
    if expires_in > 0:
        payload["expires_in"] = expires_in
    if "scope" in form:
        payload["scope"] = form["scope"][0]
    await w.send_json(payload, 200, [("Cache-Control", "no-store")])


@route(r"/oauth/([^/]+)/protected")
async def oauth_protected(req: Request, w: ResponseWriter) -> None:
    tenant = req.path_params[0]
    current = _tenants(req.server).get(tenant)
    header = req.header("authorization") or ""
    scheme, _, presented = header.partition(" ")
    valid = (
        current is not None
        and scheme.lower() == "bearer"
        and presented == current[0]
        and (current[1] is None or time.monotonic() < current[1])
    )
    if not valid:
        challenge = 'Bearer error="invalid_token", error_description="unknown or expired"'
        await w.send_json({"error": "invalid_token"}, 401, [("WWW-Authenticate", challenge)])
        return
    assert current is not None
    serial = int(current[0].rsplit("-", 1)[1])
    await w.send_json({"ok": True, "token": serial, "method": req.method})


@route(r"/oauth/([^/]+)/revoke", methods={"POST"})
async def oauth_revoke(req: Request, w: ResponseWriter) -> None:
    revoked = _tenants(req.server).pop(req.path_params[0], None)
    await w.send_json({"revoked": revoked is not None})
