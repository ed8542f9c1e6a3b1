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
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "HttpxTransport needs the 'http2' extra: pip install 'flext-api[http2]'"
    ) from exc

from .._clock import Clock, get_clock
from .._config import DEFAULT_MAX_RESPONSE_SIZE, PoolConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from ._base import check_status, map_os_error, over_limit, too_large, transport_error

__all__ = ["HttpxTransport"]


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
            raise transport_error(
                ErrorCode.DEADLINE_EXCEEDED, "deadline passed before sending", request, None
            )
        content: Any = request.content if request.stream is None else request.stream
        start = self._clock.monotonic()
        self._in_use += 1
        done = False
        try:
            built = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers.raw(),
                content=content,
                timeout=self._httpx_timeout(request),
            )
            limit = self._max_body
            # A capped buffered body is read here, chunk by chunk, so that it can be stopped.
            resp = await self._client.send(built, stream=stream or limit is not None)
            if not 100 <= resp.status_code <= 599:
                await resp.aclose()
                check_status(resp.status_code, request)
            response = HttpResponse(
                resp.status_code,
                headers=resp.headers.multi_items(),
                url=request.url,
                http_version=resp.http_version,
                reason=resp.reason_phrase,
                request=request,
                stream=self._iter_body(resp, request) if stream else None,
                close=self._closer(resp) if stream else None,
            )
            if not stream:
                response._content = (
                    resp.content if limit is None else await _read_capped(resp, request, limit)
                )
                done = True
            response.elapsed = self._clock.monotonic() - start
            return response
        except httpx2.HTTPError as exc:
            done = True
            raise self._translate(exc, request) from exc
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

    async def _iter_body(self, resp: httpx2.Response, request: HttpRequest) -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.aiter_raw():
                yield chunk
        except httpx2.HTTPError as exc:
            raise self._translate(exc, request) from exc

    def _translate(self, exc: Exception, request: HttpRequest) -> FlextApiError:
        """Map one httpx2 error to the most specific code."""
        deadline_passed = request.deadline is not None and self._clock.monotonic() >= (
            request.deadline - 0.001
        )
        code: ErrorCode
        if isinstance(exc, httpx2.TimeoutException) and deadline_passed:
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
        elif isinstance(exc, httpx2.DecodingError):
            code = ErrorCode.DECODE_ERROR
        else:
            code = ErrorCode.PROTOCOL_ERROR
        detail = str(exc) or type(exc).__name__
        message = (
            f"{code.value.lower().replace('_', ' ')} on {request.method} {request.host}: {detail}"
        )
        return transport_error(code, message, request, exc)

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


def _guess_connect_code(text: str) -> ErrorCode:
    lowered = text.lower()
    if "ssl" in lowered or "certificate" in lowered:
        return ErrorCode.TLS_ERROR
    if "name or service not known" in lowered or "nodename" in lowered or "resolution" in lowered:
        return ErrorCode.DNS_ERROR
    return ErrorCode.CONNECT_ERROR


async def _read_capped(resp: httpx2.Response, request: HttpRequest, limit: int) -> bytes:
    """The decoded body of a streamed ``resp``, or RESPONSE_TOO_LARGE past ``limit``."""
    try:
        declared = over_limit(resp.headers.get("content-length"), limit)
        if declared is not None:
            raise too_large(request, limit, declared)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise too_large(request, limit)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await resp.aclose()
