"""The WebSocket proxy: upgrade passed through, both directions pumped, close codes carried.

The upstream is chosen by the route's cluster (breakers and ejection apply) and dialled
with aiohttp's WebSocket client, offering the client's subprotocols; the one the upstream
picks is the one accepted towards the client. Each direction awaits the send before it
reads the next message, so a slow side slows the other (backpressure) instead of
queueing without bound. A close from either side is passed on with its code and reason;
the codes that may never be sent in a close frame (1005, 1006, 1015) are mapped to ones
that may. The handshake with the upstream is bounded by the route's ``per_try`` timeout
(504 ``upstream_timeout``), and a message from the upstream is bounded by the size the
listener allows a client's (a bigger one closes both sides with 1009). An upstream silent
for the route's ``idle`` timeout is pinged, and the session closed (1011) if no pong comes.
A session a JWT admitted (the core ``auth: true`` or an edge ``jwt`` rule) is closed on
both sides with 4403 ``token expired`` at the token's ``exp`` plus the leeway.
The session keeps the config snapshot it started with: a reload never closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from starlette.types import Receive, Scope, Send

from .._errors import ErrorCode
from ..protocols._ws_types import is_sendable_close_code
from ..server._ws_auth import EXPIRES_AT_KEY, TOKEN_EXPIRED_CLOSE
from ._app import Gateway
from ._headers import forward_pairs
from ._proxy import send_gateway_problem, upstream_path
from ._reasons import Reason

__all__ = ["MAX_MESSAGE_BYTES", "WebSocketSession", "proxy_websocket", "refuse_websocket"]

# uvicorn's default ``ws_max_size``: the listener refuses a bigger message from a client,
# so an upstream gets the same bound.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# aiohttp writes these for its own handshake; the request ID is the gateway's (added last).
_SKIP = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"content-length",
        b"x-request-id",
    }
)
# The scheme of the request the client made (RFC 7239 ``proto``: a URI scheme, as for HTTP).
_PROTO = {"ws": "http", "wss": "https"}


class WebSocketSession:
    """One proxied WebSocket; :meth:`close` ends it from the gateway's side."""

    def __init__(self, send: Send, upstream: aiohttp.ClientWebSocketResponse) -> None:
        self.send = send
        self.upstream = upstream
        self.closed = False

    async def close(self, code: int, reason: str) -> None:
        """Close both sides with ``code`` (1001 on shutdown)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, RuntimeError):
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
        await self.upstream.close(code=code, message=reason.encode())


async def _deny(
    scope: Scope,
    send: Send,
    reason: Reason,
    request_id: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):

        async def send_as_http(message: Any) -> None:
            await send({**message, "type": "websocket." + message["type"]})

        await send_gateway_problem(scope, send_as_http, reason, request_id, headers)
    else:
        await send({"type": "websocket.close", "code": 1011 if reason.status >= 500 else 1008})


# The upstream's answer headers a client needs to act on a refused handshake.
_RELAYED = ("WWW-Authenticate", "Retry-After")


async def _relay_refusal(
    scope: Scope, send: Send, status: int, headers: Any, request_id: bytes
) -> None:
    """The upstream's own 4xx to the handshake, passed on (status and the headers of
    :data:`_RELAYED`, no body), or a close with 1008 where the server cannot answer."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    pairs = [(b"content-length", b"0"), (b"x-request-id", request_id)]
    if headers is not None:
        for name in _RELAYED:
            pairs.extend(
                (name.lower().encode(), value.encode("latin-1", "replace"))
                for value in headers.getall(name, ())
                if "\r" not in value and "\n" not in value
            )
    await send({"type": "websocket.http.response.start", "status": status, "headers": pairs})
    await send({"type": "websocket.http.response.body", "body": b""})


async def refuse_websocket(
    gateway: Gateway,
    scope: Scope,
    receive: Receive,
    send: Send,
    reason: Reason,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Refuse a handshake before any upstream is dialled (its path, its ``Host``, its
    credentials or its rate limit), with ``headers`` (a challenge, ``Retry-After``) on
    the answer."""
    request_id = gateway.request_id(scope)
    if (await receive())["type"] == "websocket.connect":
        await _deny(scope, send, reason, request_id, headers)


async def proxy_websocket(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Handle one ``websocket`` scope."""
    snapshot = gateway._snapshot or await gateway.start()
    request_id = gateway.request_id(scope)
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    route = gateway.match(snapshot, scope)
    if route is None or gateway.draining or not route.config.websocket:
        reason = (
            Reason.NO_ROUTE
            if route is None
            else Reason.DRAINING
            if gateway.draining
            else Reason.WEBSOCKET_DISABLED
        )
        await _deny(scope, send, reason, request_id)
        return
    cluster = snapshot.clusters[route.config.cluster]
    picked = cluster.pick(set())
    if isinstance(picked, Reason):
        await _deny(scope, send, picked, request_id)
        return
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    url = picked.url + upstream_path(route, raw_path) + ("?" + query if query else "")
    url = "ws" + url[len("http") :]
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    client = scope.get("client")
    # The forwarding headers as an HTTP request's (a client outside trusted_proxies
    # cannot forge them), hop-by-hop ones out.
    pairs = forward_pairs(
        raw,
        client=client[0] if client else None,
        scheme=_PROTO.get(scope.get("scheme", "ws"), "http"),
        host=next((v for n, v in raw if n == b"host"), None),
        trusted=snapshot.trusted,
        hop=scope.get("http_version", "1.1").encode() + b" " + snapshot.via,
        drop=_SKIP,
    )
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in pairs]
    headers.append(("X-Request-ID", request_id.decode("latin-1")))
    timeouts = route.timeouts
    session = gateway.websocket_session()
    start = cluster.clock.monotonic()
    try:
        # aiohttp's ws timeouts do not cover the handshake: an upstream that accepts the
        # connection and never answers would hold the client for the session's default.
        async with asyncio.timeout(min(timeouts.per_try, timeouts.total)):
            upstream = await session.ws_connect(
                url,
                protocols=tuple(scope.get("subprotocols", ())),
                headers=headers,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeouts.connect),
                autoping=True,
                # A ping after ``idle`` seconds without a message, and the session ends
                # (1011 to the client) when no pong comes within half of that: an upstream
                # behind a dead link sends no close and no FIN. A quiet, live one answers.
                heartbeat=timeouts.idle,
                max_msg_size=MAX_MESSAGE_BYTES,
            )
    except aiohttp.WSServerHandshakeError as exc:
        # The upstream answered, with something else than a 101: it is up. Its answer
        # counts as an HTTP answer's would (a 404 or 401 is no failure of the instance,
        # a 503 is one), and a 4xx (a path or credentials it refuses) is the client's
        # to read, as an HTTP request's would be; anything else is a 502.
        status = exc.status if 100 <= exc.status <= 599 else None
        cluster.report(
            picked,
            status=status,
            error=None if status is not None else ErrorCode.CONNECT_ERROR,
            duration=cluster.clock.monotonic() - start,
        )
        if status is not None and 400 <= status < 500:
            await _relay_refusal(scope, send, status, exc.headers, request_id)
        else:
            await _deny(scope, send, Reason.UPSTREAM_RESET, request_id)
        return
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        duration = cluster.clock.monotonic() - start
        timed_out = isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError)
        error = ErrorCode.READ_TIMEOUT if timed_out else ErrorCode.CONNECT_ERROR
        cluster.report(picked, status=None, error=error, duration=duration)
        failed = Reason.UPSTREAM_TIMEOUT if timed_out else Reason.CONNECT_FAILURE
        await _deny(scope, send, failed, request_id)
        return
    cluster.report(picked, status=101, error=None, duration=cluster.clock.monotonic() - start)
    if not await _to_client(send, {"type": "websocket.accept", "subprotocol": upstream.protocol}):
        # The client left during the upstream's handshake: close the upstream as for a
        # client that leaves later (going away), not by dropping its connection.
        await upstream.close(code=1001, message=b"client went away")
        return
    ws = WebSocketSession(send, upstream)
    gateway.websockets.add(ws)
    gateway.metrics.websockets.inc()
    in_flight = cluster.in_flight
    in_flight[picked.id] = in_flight.get(picked.id, 0) + 1
    until = scope.get(EXPIRES_AT_KEY)
    expires_in = until - gateway.clock.time() if until is not None else None
    try:
        await _pump(ws, receive, send, upstream, expires_in)
    finally:
        in_flight[picked.id] -= 1
        gateway.metrics.websockets.dec()
        gateway.websockets.discard(ws)
        if not upstream.closed:
            await upstream.close()


async def _pump(
    ws: WebSocketSession,
    receive: Receive,
    send: Send,
    upstream: aiohttp.ClientWebSocketResponse,
    expires_in: float | None = None,
) -> None:
    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                if not ws.closed:
                    ws.closed = True
                    code = _sendable(message.get("code", 1000), gone=1001)
                    reason = message.get("reason") or ""
                    await upstream.close(code=code, message=reason.encode())
                return
            text = message.get("text")
            try:
                if text is not None:
                    await upstream.send_str(text)
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                # The upstream closed or went away while this message came in: the
                # other direction reads its close and passes it on to the client.
                return

    async def upstream_to_client() -> None:
        code, reason = 1006, ""
        while True:
            msg = await upstream.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                if not await _to_client(send, {"type": "websocket.send", "text": msg.data}):
                    return
            elif msg.type is aiohttp.WSMsgType.BINARY:
                if not await _to_client(send, {"type": "websocket.send", "bytes": msg.data}):
                    return
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                code, reason = int(msg.data), str(msg.extra or "")
                break
            else:  # CLOSING, CLOSED, ERROR: the connection ended without a close frame
                code = upstream.close_code or 1006
                break
        if not ws.closed:
            ws.closed = True
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "websocket.close", "code": _sendable(code), "reason": reason})

    async def expire(seconds: float) -> None:
        await asyncio.sleep(seconds)
        await ws.close(TOKEN_EXPIRED_CLOSE, "token expired")

    tasks = [
        asyncio.create_task(client_to_upstream()),
        asyncio.create_task(upstream_to_client()),
    ]
    if expires_in is not None:
        tasks.append(asyncio.create_task(expire(max(expires_in, 0.0))))
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        # One side ended: give the other a moment to see the close handshake through.
        if pending:
            await asyncio.wait(pending, timeout=5.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _to_client(send: Send, message: dict[str, Any]) -> bool:
    """Send ``message`` to the client; False when the client is gone (its disconnect
    reaches the other direction, which closes the upstream)."""
    try:
        await send(message)
    except (OSError, RuntimeError):
        return False
    return True


def _sendable(code: int, *, gone: int = 1011) -> int:
    """A close code that may be sent (RFC 6455 §7.4.1): 1005 (no status) -> 1000, any
    other reserved one (1006, 1015...) -> ``gone``.

    ``gone`` is 1011 towards the client (its upstream failed) and 1001 towards the
    upstream (its client went away).
    """
    if code == 1005:
        return 1000
    return code if is_sendable_close_code(code) else gone
