"""The WebSocket opening handshake on aiohttp, with its errors translated.

aiohttp's WebSocket client is already a dependency and handles framing, masking,
ping/pong and close frames (DESIGN §4). This module is the transport-layer seam of
:mod:`flext_api.protocols`: it opens one connection and maps aiohttp/OS errors to
:class:`~flext_api.FlextApiError` codes, as :mod:`._aiohttp` does for requests.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiohttp

from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest
from ._base import map_os_error, transport_error

__all__ = ["open_websocket"]


async def open_websocket(
    request: HttpRequest,
    *,
    protocols: Sequence[str] = (),
    heartbeat: float | None = None,
    pong_timeout: float | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    max_message_size: int = 4 * 2**20,
    ssl_context: ssl.SSLContext | None = None,
    verify: bool = True,
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """Open a WebSocket for ``request`` (its URL may be http(s) or ws(s)).

    Returns the session that owns the connection (close it after the socket) and the
    socket. Raises :class:`FlextApiError`: ``CONNECT_*`` when no connection was made,
    ``READ_TIMEOUT`` when the server accepted the connection but sent nothing of its
    answer to the upgrade for ``read_timeout`` seconds, ``HTTP_STATUS`` when the server
    refused the upgrade (``details["status"]``).
    """
    # sock_read bounds each read of the handshake response; aiohttp drops it once the
    # socket is upgraded (ws_receive=None), so it never ends a quiet WebSocket.
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
    )
    ssl_arg: ssl.SSLContext | bool = ssl_context if ssl_context is not None else verify
    try:
        ws = await session.ws_connect(
            request.url,
            protocols=tuple(protocols),
            heartbeat=heartbeat,
            headers=[(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"],
            max_msg_size=max_message_size,
            ssl=ssl_arg,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=connect_timeout or 10.0),
        )
    except BaseException as exc:
        await session.close()
        if isinstance(exc, Exception):
            raise translate_ws_error(exc, request) from exc
        raise
    if heartbeat is not None and pong_timeout is not None and hasattr(ws, "_pong_heartbeat"):
        # aiohttp waits heartbeat/2 for the pong and has no parameter for it; the
        # attribute is read each time a ping is sent.
        ws._pong_heartbeat = pong_timeout
    return session, ws


def translate_ws_error(exc: Exception, request: HttpRequest) -> FlextApiError:
    """Map one aiohttp/OS error of the handshake to the most specific code."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        err = FlextApiError.from_code(
            ErrorCode.HTTP_STATUS if exc.status >= 400 else ErrorCode.PROTOCOL_ERROR,
            f"WebSocket upgrade of {request.url} refused: {exc.status} {exc.message}",
            request=request,
            details={"status": exc.status},
        )
        err.__cause__ = exc
        return err
    code: ErrorCode
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        code = ErrorCode.DNS_ERROR
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        code = ErrorCode.TLS_ERROR
    elif isinstance(exc, aiohttp.ClientConnectorError):
        code = map_os_error(exc.os_error, connecting=True)
    elif isinstance(exc, aiohttp.SocketTimeoutError):
        code = ErrorCode.READ_TIMEOUT  # connected; the upgrade's answer never came
    elif isinstance(exc, TimeoutError):
        code = ErrorCode.CONNECT_TIMEOUT
    elif isinstance(exc, aiohttp.InvalidURL | ValueError):
        code = ErrorCode.INVALID_REQUEST
    elif isinstance(exc, aiohttp.ClientError | OSError):
        code = ErrorCode.CONNECT_ERROR
    else:
        code = ErrorCode.UNEXPECTED_ERROR
    return transport_error(code, f"WebSocket connect to {request.url} failed: {exc}", request, exc)
