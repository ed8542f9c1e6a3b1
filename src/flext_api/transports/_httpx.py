"""``HttpxTransport``: HTTP/1.1 and HTTP/2 on httpx2 (extra ``http2``).

httpx2 is the maintained fork of httpx (no httpx release since 0.28.1). With
``http2=True`` many concurrent requests share one multiplexed connection. httpx2's
exceptions are translated here to :class:`ErrorCode`s, as aiohttp's are in
``_aiohttp.py``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

try:
    import h2.errors
    import h2.events
    import h2.exceptions
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "HttpxTransport needs the 'http2' extra: pip install 'flext-api[http2]'"
    ) from exc

from .._clock import Clock, get_clock
from .._config import DEFAULT_MAX_RESPONSE_SIZE, PoolConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from ._base import (
    INVALID_MESSAGE,
    UNPROCESSED,
    BodyFailed,
    body_failed,
    check_declared,
    check_framing,
    check_status,
    deadline_before_sending,
    guarded_body,
    latin1_headers,
    map_os_error,
    transport_error,
)
from ._decoding import BodyDecodeError, BodyDecoder, body_decoder, decode_into

__all__ = ["HttpxTransport"]

_MAX_PORT = 65535
#: Fields RFC 9113 §8.2.2 forbids in an HTTP/2 message ("MUST be treated as malformed");
#: httpx2 turns h2's own check of them off.
_CONNECTION_FIELDS = (
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
)
#: What h2 raises, and httpx2 lets out unwrapped when it happens while a body is read.
_H2Error = h2.exceptions.ProtocolError


class HttpxTransport:
    """httpx2 transport; ``http2=True`` negotiates HTTP/2 over TLS (ALPN).

    ``max_response_size`` caps a buffered body, once decoded (None: no cap): past it
    the request fails with ``RESPONSE_TOO_LARGE``. Streamed bodies are not capped.
    """

    name = "httpx2"

    def __init__(
        self,
        pool: PoolConfig | None = None,
        timeout: TimeoutConfig | None = None,
        *,
        http2: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        clock: Clock | None = None,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._pool = pool or PoolConfig()
        self._timeout = timeout or TimeoutConfig()
        self._max_body = max_response_size
        self._clock = get_clock(clock)
        self._http2 = http2
        self._in_use = 0
        self._client = httpx2.AsyncClient(
            http2=http2,
            verify=ssl_context if ssl_context is not None else verify,
            limits=httpx2.Limits(
                max_connections=self._pool.max_connections,
                max_keepalive_connections=self._pool.max_keepalive,
                keepalive_expiry=self._pool.keepalive_expiry,
            ),
            follow_redirects=False,
            trust_env=False,
        )

    def _httpx_timeout(self, request: HttpRequest) -> httpx2.Timeout:
        t = request.timeout or self._timeout
        remaining = None
        if request.deadline is not None:
            remaining = max(0.0, request.deadline - self._clock.monotonic())

        def cap(value: float | None) -> float | None:
            if remaining is None:
                return value
            return remaining if value is None else min(value, remaining)

        return httpx2.Timeout(
            connect=cap(t.connect), read=cap(t.read), write=cap(t.write), pool=cap(t.pool)
        )

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Send one request; see :class:`~flext_api.transports.Transport`."""
        if request.deadline is not None and request.deadline <= self._clock.monotonic():
            raise deadline_before_sending(request)
        content: Any = request.content if request.stream is None else guarded_body(request.stream)
        start = self._clock.monotonic()
        self._in_use += 1
        done = False
        answered = False
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers.raw(),
                content=content,
                timeout=self._httpx_timeout(request),
            )
            port = built.url.port
            if port is not None and port > _MAX_PORT:
                # httpx2 takes it, and the connect fails with a bare OverflowError.
                raise httpx2.InvalidURL(f"port {port} is out of range 0-{_MAX_PORT}")
            limit = self._max_body
            # The body is read here, chunk by chunk, so that a capped one can be stopped
            # and a compressed one decoded by _decoding (httpx2 passes a gzip body cut
            # inside its compressed stream off as complete).
            resp = await self._client.send(built, stream=True)
            answered = True
            if resp.http_version == "HTTP/2":
                try:
                    _check_h2_fields(resp.headers, request)
                except FlextApiError:
                    await resp.aclose()
                    raise
            if not 100 <= resp.status_code <= 599:
                await resp.aclose()
                check_status(resp.status_code, request)
            if "content-length" in resp.headers:
                lengths = resp.headers.get_list("content-length")
                try:
                    check_framing(request, lengths, "transfer-encoding" in resp.headers)
                except FlextApiError:
                    await resp.aclose()  # unread: the connection is not reused
                    raise
            decoder = body_decoder(resp.headers.get("content-encoding"))
            response = HttpResponse(
                resp.status_code,
                headers=latin1_headers(resp.headers.raw),
                url=request.url,
                http_version=resp.http_version,
                reason=resp.reason_phrase,
                request=request,
                stream=self._iter_body(resp, request, decoder) if stream else None,
                close=self._closer(resp) if stream else None,
            )
            if not stream:
                response._content = await _read_capped(resp, request, limit, decoder)
                done = True
            response.elapsed = self._clock.monotonic() - start
            return response
        except (httpx2.HTTPError, httpx2.InvalidURL, BodyDecodeError, _H2Error) as exc:
            # InvalidURL is not an HTTPError: a malformed port or host was let out.
            done = True
            raise self._translate(exc, request, answered=answered) from exc
        except BodyFailed as exc:
            # The request body's own source raised: httpx2 let it out as it was (not a
            # FlextApiError). UNEXPECTED_ERROR caused by it, as on the other transports.
            done = True
            cause = exc.source
            raise body_failed(request, cause) from cause
        except BaseException:
            done = True
            raise
        finally:
            if done:
                self._in_use -= 1

    def _closer(self, resp: httpx2.Response) -> Any:
        async def close() -> None:
            try:
                await resp.aclose()
            finally:
                self._in_use -= 1

        return close

    async def _iter_body(
        self, resp: httpx2.Response, request: HttpRequest, decoder: BodyDecoder | None
    ) -> AsyncIterator[bytes]:
        # Decoded, as the buffered body is (the raw bytes of a gzip answer were handed
        # out here before): by ``decoder`` (which checks that a compressed stream is
        # complete), else by httpx2 (identity, lists of codings).
        try:
            if decoder is None:
                async for chunk in resp.aiter_bytes():
                    yield chunk
                return
            async for chunk in resp.aiter_raw():
                for piece in decoder.step(chunk):
                    yield piece
            for piece in decoder.step(None):
                yield piece
        except (httpx2.HTTPError, BodyDecodeError, _H2Error) as exc:
            raise self._translate(exc, request, answered=True) from exc

    def _translate(self, exc: Exception, request: HttpRequest, *, answered: bool) -> FlextApiError:
        """Map one httpx2 (or h2) error to the most specific code; ``answered``: the
        answer's head had arrived."""
        deadline_passed = request.deadline is not None and self._clock.monotonic() >= (
            request.deadline - 0.001
        )
        code: ErrorCode
        if isinstance(exc, BodyDecodeError | httpx2.DecodingError):
            # A body that does not decode: PROTOCOL_ERROR, as on aiohttp and pyreqwest.
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, httpx2.TimeoutException) and deadline_passed:
            code = ErrorCode.DEADLINE_EXCEEDED
        elif isinstance(exc, httpx2.ConnectTimeout):
            code = ErrorCode.CONNECT_TIMEOUT
        elif isinstance(exc, httpx2.ReadTimeout):
            code = ErrorCode.READ_TIMEOUT
        elif isinstance(exc, httpx2.WriteTimeout):
            code = ErrorCode.WRITE_TIMEOUT
        elif isinstance(exc, httpx2.PoolTimeout):
            code = ErrorCode.POOL_TIMEOUT
        elif isinstance(exc, httpx2.ConnectError):
            cause = exc.__context__ or exc.__cause__
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__context__ or cause.__cause__
            code = (
                map_os_error(cause, connecting=True)
                if cause is not None
                else _guess_connect_code(str(exc))
            )
        elif isinstance(exc, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
            code = ErrorCode.INVALID_REQUEST
        else:
            code = ErrorCode.PROTOCOL_ERROR
        reason = _h2_reason(exc, answered) if code is ErrorCode.PROTOCOL_ERROR else None
        if reason == UNPROCESSED:
            # Nothing was done upstream: CONNECT_ERROR, which is retried whatever the
            # method (a POST too), as when the connection could not be made.
            code = ErrorCode.CONNECT_ERROR
        detail = str(exc) or type(exc).__name__
        message = (
            f"{code.value.lower().replace('_', ' ')} on {request.method} {request.host}: {detail}"
        )
        err = transport_error(code, message, request, exc)
        if reason is not None:
            err.details["reason"] = reason
        return err

    async def aclose(self) -> None:
        """Close the pool; idempotent."""
        await self._client.aclose()

    def stats(self) -> dict[str, Any]:
        """Pool figures as far as httpx2 exposes them."""
        pool = getattr(self._client._transport, "_pool", None)
        connections = list(getattr(pool, "connections", []) if pool is not None else [])
        idle = sum(1 for c in connections if getattr(c, "is_idle", lambda: False)())
        return {
            "transport": self.name,
            "http2": self._http2,
            "max_connections": self._pool.max_connections,
            "in_use": self._in_use,
            "waiting": 0,
            "idle": idle,
            "connections": len(connections),
        }

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<HttpxTransport http2={self._http2} [Requests: {s['in_use']} active | "
            f"Connections: {s['connections']} open, {s['idle']} idle]>"
        )


def _check_h2_fields(headers: httpx2.Headers, request: HttpRequest) -> None:
    """Raise PROTOCOL_ERROR (``invalid_message``) for an HTTP/2 answer with a
    connection-specific field (RFC 9113 §8.2.2): httpx2 returned it as valid, and a
    ``transfer-encoding: chunked`` one as a body with the chunk framing left in."""
    found = [name for name in _CONNECTION_FIELDS if name in headers]
    if not found:
        return
    err = transport_error(
        ErrorCode.PROTOCOL_ERROR,
        f"protocol error on {request.method} {request.host}: the upstream's HTTP/2 answer "
        f"has the connection-specific field {found[0]!r}",
        request,
        None,
    )
    err.details["reason"] = INVALID_MESSAGE
    raise err


def _h2_reason(exc: BaseException, answered: bool) -> str | None:
    """``details["reason"]`` of an HTTP/2 failure, read from the h2 event or error
    that httpx2 chains: UNPROCESSED when the upstream said, before any answer, that it
    did not process the request (RFC 9113 §8.7: REFUSED_STREAM, or GOAWAY with last
    stream id 0; httpcore2 resends by itself on a GOAWAY below a later stream), or the
    client held it back (the upstream allows no more streams); INVALID_MESSAGE for an
    answer h2 refused (a content-length unlike its DATA, a header block that never
    ends); None otherwise."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, h2.exceptions.TooManyStreamsError):
            return UNPROCESSED
        if isinstance(cause, h2.exceptions.ProtocolError):
            return INVALID_MESSAGE
        event = cause.args[0] if cause.args else None
        refused = (
            isinstance(event, h2.events.StreamReset)
            and event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        ) or (isinstance(event, h2.events.ConnectionTerminated) and event.last_stream_id == 0)
        if refused and not answered:
            return UNPROCESSED
        cause = cause.__cause__ or cause.__context__
    return None


def _guess_connect_code(text: str) -> ErrorCode:
    lowered = text.lower()
    if "ssl" in lowered or "certificate" in lowered:
        return ErrorCode.TLS_ERROR
    if "name or service not known" in lowered or "nodename" in lowered or "resolution" in lowered:
        return ErrorCode.DNS_ERROR
    return ErrorCode.CONNECT_ERROR


async def _read_capped(
    resp: httpx2.Response, request: HttpRequest, limit: int | None, decoder: BodyDecoder | None
) -> bytes:
    """The decoded body of a streamed ``resp``, or RESPONSE_TOO_LARGE past ``limit``:
    decoded by ``decoder`` (which checks that a compressed stream is complete), else by
    httpx2 (identity, lists of codings)."""
    try:
        check_declared(request, limit, resp.headers.get("content-length"))
        chunks: list[bytes] = []
        size = 0
        # Neither iterator gives an empty chunk (b"" would end the decoded body).
        async for chunk in resp.aiter_bytes() if decoder is None else resp.aiter_raw():
            size = decode_into(chunks, size, decoder, chunk, request, limit)
        decode_into(chunks, size, decoder, b"", request, limit)
        return b"".join(chunks)
    finally:
        await resp.aclose()
