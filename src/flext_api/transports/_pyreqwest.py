"""``PyreqwestTransport``: HTTP/1.1 (and HTTP/2 on request) on Rust's reqwest, via pyreqwest.

An optional transport (extra ``pyreqwest``). The exchange, the connection pool, TLS
(rustls) and decompression run in Rust; this module configures pyreqwest from the same
:class:`PoolConfig` and :class:`TimeoutConfig` as the other transports, holds the pool
slots (so waiting for one fails ``POOL_TIMEOUT`` and shows in ``stats()``), and
translates every pyreqwest error to the :class:`ErrorCode` the aiohttp transport gives
for the same fault.

What pyreqwest reports, and how it is read:

* Its error classes say little about *when* a failure happened: a refused connection and
  a connection dropped after the request was written are both ``ConnectError``. The
  chain of causes it carries does say it: ``client error (Connect)`` is the connect
  phase (safe to retry for any method), ``client error (SendRequest)`` a request that
  went out (``PROTOCOL_ERROR``, retried for idempotent methods only).
* A timeout before the response head is ``ConnectTimeoutError`` whether the connect
  timer or the read timer fired. The read timer starts once the request is written, so
  a timeout earlier than ``read`` seconds after sending is a connect timeout; a later
  one is read as ``READ_TIMEOUT``. When ``connect >= read`` the two cannot be told
  apart and the answer is ``READ_TIMEOUT``, the one that never retries a request that
  may have been processed.

Timeouts: ``connect`` and ``read`` are pyreqwest client settings, so each distinct pair
a request asks for gets its own pyreqwest client (and pool); at most
``max_timeout_profiles`` pairs. The deadline is pyreqwest's per-request total timeout
for a whole response, and bounds only the head of a streamed one (a streamed body is
held to the read timeout per chunk, as on aiohttp). There is no write timeout (as on
aiohttp: a slow upload is bounded by the deadline).

Not supported, refused with ``CONFIG_ERROR``: a per-host connection cap
(``max_connections_per_host``), an ``ssl_context`` that verifies certificates but not
host names. Not honoured, and said so here and in the docs: ``dns_cache_ttl``
(reqwest resolves for every new connection), ``max_keepalive`` is per host (reqwest
keeps idle connections per host), the CA certificates of an ``ssl_context`` are added
to the built-in roots rather than replacing them, and a client certificate must be
given as ``identity_pem`` (an ``ssl.SSLContext`` does not give its own back).
See docs/transports.md.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

try:
    from pyreqwest import exceptions as pe
    from pyreqwest.client import Client, ClientBuilder
    from pyreqwest.request import StreamRequest
    from pyreqwest.response import Response
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PyreqwestTransport needs the 'pyreqwest' extra: pip install 'flext-api[pyreqwest]'"
    ) from exc

from .._clock import Clock, get_clock
from .._config import DEFAULT_MAX_RESPONSE_SIZE, PoolConfig, TimeoutConfig
from .._errors import ConfigError, ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from ._base import (
    body_failed,
    check_declared,
    check_framing,
    check_status,
    deadline_before_sending,
    map_os_error,
    transport_error,
)
from ._decoding import (
    ACCEPT_ENCODING,
    BodyDecodeError,
    BodyDecoder,
    body_decoder,
    decode_all,
    decode_into,
)
from ._slots import PoolSlots

__all__ = ["UNREADABLE_HEADERS", "PyreqwestTransport"]

#: ``response.extensions[UNREADABLE_HEADERS]``: names of the response headers pyreqwest
#: could not hand over (a value that is not ASCII), left out of ``response.headers``.
UNREADABLE_HEADERS = "unreadable_headers"

_VERSIONS = {"HTTP/1.1": "HTTP/1.1", "HTTP/2.0": "HTTP/2", "HTTP/1.0": "HTTP/1.0"}
# rustls' own words for a peer that does not speak TLS ("received corrupt message of
# type InvalidContentType": a plain-HTTP port answered the handshake) or speaks it badly.
_TLS_WORDS = (
    "certificate",
    "tls",
    "handshake",
    "alert",
    "corrupt message",
    "peer misbehaved",
    "peer is incompatible",
)
# hyper does not keep the reason phrase: the standard one stands in.
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


class PyreqwestTransport:
    """HTTP on pyreqwest (Rust reqwest + hyper + rustls) with a bounded pool.

    Args:
        pool: pool sizes and keep-alive (defaults from :class:`PoolConfig`).
        timeout: per-phase timeouts used when a request carries none.
        ssl_context: its CA certificates are trusted (in addition to the built-in
            roots); ``CERT_NONE`` turns verification off.
        verify: False disables certificate checks (never do this in production).
        identity_pem: a client certificate and its private key, PEM, for mutual TLS.
        http2: negotiate HTTP/2 over TLS (ALPN); otherwise HTTP/1.1 only.
        clock: monotonic clock used for deadlines and ``elapsed``.
        max_timeout_profiles: how many distinct (connect, read) timeout pairs may be
            used; each has its own pyreqwest client and pool.
        max_response_size: bytes a buffered body may reach once decompressed (None: no
            cap, and the body is read in one call); past it the request fails with
            ``RESPONSE_TOO_LARGE``. Streamed bodies are not capped.

    Raises:
        ConfigError: a setting this transport cannot honour.
    """

    name = "pyreqwest"

    def __init__(
        self,
        pool: PoolConfig | None = None,
        timeout: TimeoutConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        identity_pem: bytes | None = None,
        http2: bool = False,
        clock: Clock | None = None,
        max_timeout_profiles: int = 8,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._pool = pool or PoolConfig()
        self._max_body = max_response_size
        self._timeout = timeout or TimeoutConfig()
        self._clock = get_clock(clock)
        per_host = self._pool.max_connections_per_host
        if 0 < per_host < self._pool.max_connections:
            raise ConfigError(
                f"pool.max_connections_per_host={per_host}: the pyreqwest transport has no "
                "per-host connection cap (use the aiohttp transport)"
            )
        self._roots: list[bytes] = []
        self._verify = verify
        self._tls_versions: tuple[str | None, str | None] = (None, None)
        if ssl_context is not None:  # it wins over ``verify``, as on aiohttp
            self._verify = ssl_context.verify_mode != ssl.CERT_NONE
            if self._verify and not ssl_context.check_hostname:
                raise ConfigError(
                    "ssl_context checks certificates but not host names: the pyreqwest "
                    "transport always checks both"
                )
            self._roots = list(ssl_context.get_ca_certs(binary_form=True))
            self._tls_versions = _tls_versions(ssl_context)
        self._identity = identity_pem
        self._http2 = http2
        self._max_profiles = max_timeout_profiles
        self._clients: dict[tuple[float | None, float | None], Client] = {}
        self._slots = PoolSlots(self._pool.max_connections)
        self._in_use = 0
        self._closed = False
        try:  # the first client now, so TLS material pyreqwest refuses fails here
            self._client_for(self._timeout)
        except ValueError as exc:  # pyreqwest's BuilderError is a ValueError
            raise ConfigError(f"pyreqwest refused the TLS settings: {exc}") from exc

    # -- pool -------------------------------------------------------------------------------
    def _client_for(self, timeout: TimeoutConfig) -> Client:
        key = (timeout.connect, timeout.read)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= self._max_profiles:
                raise ConfigError(
                    f"more than {self._max_profiles} distinct (connect, read) timeouts: each "
                    "needs its own pyreqwest client (raise max_timeout_profiles)"
                )
            client = self._clients[key] = self._build(timeout.connect, timeout.read)
        return client

    def _build(self, connect: float | None, read: float | None) -> Client:
        pool = self._pool
        builder = (
            ClientBuilder()
            .follow_redirects(False)  # the pipeline's redirect stage follows them
            .no_proxy()  # as aiohttp's trust_env=False: no proxy from the environment
            .pool_idle_timeout(_span(pool.keepalive_expiry))
            .pool_max_idle_per_host(pool.max_keepalive)
            # Bodies are decoded by this transport (_decoding), as on aiohttp: reqwest's
            # decoder returns only the first member of a multi-member gzip body and
            # refuses raw deflate.
            .gzip(False)
            .deflate(False)
            .brotli(False)
            .zstd(False)
        )
        builder = builder.http2(True) if self._http2 else builder.http1_only()
        if connect is not None:
            builder = builder.connect_timeout(_span(connect))
        if read is not None:
            builder = builder.read_timeout(_span(read))
        for der in self._roots:
            builder = builder.add_root_certificate_der(der)
        if not self._verify:
            builder = builder.danger_accept_invalid_certs(True)
        if self._identity is not None:
            builder = builder.identity_pem(self._identity)
        lowest, highest = self._tls_versions
        if lowest is not None:
            builder = builder.min_tls_version(lowest)  # type: ignore[arg-type]
        if highest is not None:
            builder = builder.max_tls_version(highest)  # type: ignore[arg-type]
        return builder.build()

    def _give_back(self) -> None:
        self._in_use -= 1
        self._slots.give()

    # -- sending ----------------------------------------------------------------------------
    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Send one request; see :class:`~flext_api.transports.Transport`."""
        if self._closed:
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST, "transport is closed", request=request
            )
        timeout = request.timeout or self._timeout
        clock = self._clock
        start = clock.monotonic()
        remaining = None if request.deadline is None else request.deadline - start
        if remaining is not None and remaining <= 0:
            raise deadline_before_sending(request)
        slots = self._slots
        if slots.free > 0 and not slots.waiters:
            slots.free -= 1
        else:
            await slots.wait(request, timeout, remaining)
        self._in_use += 1
        held = True  # the slot goes back here, or in a streamed response's close()
        sent = time.monotonic()  # pyreqwest's timers run on real time, whatever the clock
        try:
            if request.deadline is not None:
                remaining = request.deadline - clock.monotonic()
            builder = self._client_for(timeout).request(request.method, request.url)
            headers = request.headers.raw()
            if "accept-encoding" not in request.headers:
                # What reqwest sent when it decoded bodies itself (aiohttp sends its own).
                headers = [*headers, ("Accept-Encoding", ACCEPT_ENCODING)]
            builder = builder.headers(headers)
            if request.stream is not None:
                builder = builder.body_stream(request.stream)
            elif request.content:
                builder = builder.body_bytes(request.content)
            if stream:
                # Buffer nothing ahead: pyreqwest would otherwise hold the head back
                # until 64 KiB of body (or its end) arrived, delaying every slow stream.
                streamed = builder.streamed_read_buffer_limit(0).build_streamed()
                resp = await _enter(streamed, remaining)
                try:
                    response = self._response(request, resp, close=self._closer(streamed))
                    # The decoder needs the headers: the stream is set once they are read
                    # (and the body marked unread, as a response built with a stream is).
                    response._stream = self._iter_body(
                        resp,
                        request,
                        timeout,
                        body_decoder(response.headers.get("content-encoding")),
                    )
                    response._content = None
                except BaseException:
                    # A refused head (a status outside 100-599): the connection is
                    # closed here, as no response will be handed out to close it.
                    await streamed.__aexit__(None, None, None)
                    raise
                held = False
            else:
                if remaining is not None:
                    builder = builder.timeout(_span(max(remaining, 0.001)))
                limit = self._max_body
                if limit is None:
                    resp = await builder.build().send()
                    response = self._response(request, resp)
                    content = (await resp.bytes()).to_bytes()
                    decoder = body_decoder(response.headers.get("content-encoding"))
                    response._content = (
                        content if decoder is None else decode_all(decoder, content, request, None)
                    )
                else:
                    response = await self._read_capped(builder.build_streamed(), request, limit)
                held = False
                self._give_back()
            response.elapsed = clock.monotonic() - start
            return response
        except Exception as exc:
            if held:
                self._give_back()
            raise self._translate(
                exc, request, timeout, waited=time.monotonic() - sent, in_body=False
            ) from exc
        except BaseException:
            if held:
                self._give_back()
            raise

    @staticmethod
    def _response(
        request: HttpRequest,
        resp: Response,
        stream: AsyncIterator[bytes] | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> HttpResponse:
        status = resp.status
        if not 100 <= status <= 599:
            check_status(status, request)
        headers, unreadable = _headers(resp)
        if "content-length" in headers:
            lengths = headers.get_list("content-length")
            check_framing(request, lengths, "transfer-encoding" in headers)
        response = HttpResponse(
            status,
            headers=headers,
            url=request.url,
            http_version=_VERSIONS.get(resp.version, resp.version),
            reason=_PHRASES.get(status, ""),
            request=request,
            stream=stream,
            close=close,
        )
        if unreadable:
            response.extensions[UNREADABLE_HEADERS] = unreadable
        return response

    async def _read_capped(
        self, streamed: StreamRequest, request: HttpRequest, limit: int
    ) -> HttpResponse:
        """The response of ``streamed`` read whole, or RESPONSE_TOO_LARGE past ``limit``
        (a buffered read in one call could not be stopped)."""
        resp = await streamed.__aenter__()
        try:
            response = self._response(request, resp)
            check_declared(request, limit, resp.get_header("content-length"))
            reader = resp.body_reader
            decoder = body_decoder(response.headers.get("content-encoding"))
            chunks: list[bytes] = []
            size = 0
            while (chunk := await reader.read_chunk()) is not None:
                size = decode_into(chunks, size, decoder, chunk.to_bytes(), request, limit)
            decode_into(chunks, size, decoder, b"", request, limit)
            response._content = b"".join(chunks)
            return response
        finally:
            await streamed.__aexit__(None, None, None)

    def _closer(self, streamed: StreamRequest) -> Callable[[], Awaitable[None]]:
        # HttpResponse.aclose() calls this at most once.
        async def close() -> None:
            try:
                await streamed.__aexit__(None, None, None)
            finally:
                self._give_back()

        return close

    async def _iter_body(
        self,
        resp: Response,
        request: HttpRequest,
        timeout: TimeoutConfig,
        decoder: BodyDecoder | None,
    ) -> AsyncIterator[bytes]:
        reader = resp.body_reader
        while True:
            try:
                chunk = await reader.read_chunk()
            except Exception as exc:
                raise self._translate(exc, request, timeout, waited=None, in_body=True) from exc
            if decoder is None:
                if chunk is None:
                    return
                yield chunk.to_bytes()
                continue
            try:
                for piece in decoder.step(None if chunk is None else chunk.to_bytes()):
                    yield piece
            except BodyDecodeError as exc:
                raise self._translate(exc, request, timeout, waited=None, in_body=True) from exc
            if chunk is None:
                return

    # -- errors -----------------------------------------------------------------------------
    def _translate(
        self,
        exc: Exception,
        request: HttpRequest,
        timeout: TimeoutConfig,
        *,
        waited: float | None,
        in_body: bool,
    ) -> FlextApiError:
        """Map one pyreqwest/OS/asyncio error to the code aiohttp's transport gives."""
        if isinstance(exc, FlextApiError):
            return exc
        deadline_passed = request.deadline is not None and self._clock.monotonic() >= (
            request.deadline - 0.001
        )
        code: ErrorCode
        if isinstance(exc, BodyDecodeError):  # a body that does not decode, as on aiohttp
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, TimeoutError):  # pyreqwest's timeouts are TimeoutErrors too
            if deadline_passed:
                code = ErrorCode.DEADLINE_EXCEEDED
            elif isinstance(exc, pe.ReadTimeoutError) or in_body:
                code = ErrorCode.READ_TIMEOUT
            elif isinstance(exc, pe.WriteTimeoutError):
                code = ErrorCode.WRITE_TIMEOUT
            else:
                code = _head_timeout(timeout, waited)
        elif isinstance(exc, pe.ConnectError):
            code = _connect_error(_causes(exc))
        elif isinstance(exc, pe.NetworkError | pe.DecodeError):
            # Read/write failures on an established connection, a body cut short, a
            # response head that does not parse: aiohttp says PROTOCOL_ERROR for each.
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, pe.BuilderError | pe.ClientClosedError | ValueError):
            code = ErrorCode.INVALID_REQUEST
        elif isinstance(exc, pe.RedirectError):  # pragma: no cover - redirects are off
            code = ErrorCode.TOO_MANY_REDIRECTS
        elif isinstance(exc, pe.RequestPanicError):  # pragma: no cover - a pyreqwest bug
            code = ErrorCode.UNEXPECTED_ERROR
        elif isinstance(exc, pe.PyreqwestError):
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, OSError):
            code = map_os_error(exc, connecting=False)
        else:
            code = ErrorCode.UNEXPECTED_ERROR
            if request.stream is not None:
                # The request body's own source raised (pyreqwest passes it on as it was).
                return body_failed(request, exc)
        detail = "; ".join(_causes(exc)[1:]) or str(exc) or type(exc).__name__
        message = f"{code.value.lower().replace('_', ' ')} on {request.method} {request.host}: "
        return transport_error(code, message + detail, request, exc)

    # -- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every pyreqwest client; idempotent."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def stats(self) -> dict[str, Any]:
        """Pool figures: slots in use and waited for (pyreqwest does not expose idle ones)."""
        return {
            "transport": self.name,
            "max_connections": self._pool.max_connections,
            "in_use": self._in_use,
            "waiting": self._slots.waiting,
            "clients": len(self._clients),
        }

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<PyreqwestTransport http2={self._http2} [Requests: {s['in_use']} active, "
            f"{s['waiting']} queued | max {s['max_connections']}]>"
        )


def _headers(resp: Response) -> tuple[Headers, list[str]]:
    """The response's headers, and the names of those left out.

    pyreqwest gives header values as ``str`` only and fails the whole map when one value
    is not ASCII (``obs-text``: ``caf\\xe9``, a UTF-8 file name...); such a header cannot
    be read back, so it is left out (its name listed in
    ``response.extensions["unreadable_headers"]``) rather than failing a response every
    other transport returns.
    """
    headers = resp.headers
    try:
        return Headers.from_pairs(list(headers.items())), []
    except ValueError:
        pairs: list[tuple[str, str]] = []
        unreadable: list[str] = []
        for name in dict.fromkeys(headers.keys()):
            try:
                pairs.extend((name, value) for value in headers.getall(name))
            except ValueError:
                unreadable.append(name)
        return Headers.from_pairs(pairs), unreadable


def _span(seconds: float) -> timedelta:
    """``seconds`` as the timedelta pyreqwest takes: a span past timedelta's range (a
    valid but vast setting, ~2.7 million years) raised OverflowError; it is as good as
    no bound, so the longest timedelta stands in for it."""
    return timedelta.max if seconds >= _MAX_SPAN else timedelta(seconds=seconds)


_MAX_SPAN = timedelta.max.total_seconds()


async def _enter(streamed: StreamRequest, remaining: float | None) -> Response:
    """Send a streamed request and return once its head is in, within ``remaining``."""
    if remaining is None:
        return await streamed.__aenter__()
    async with asyncio.timeout(max(remaining, 0.0)):
        return await streamed.__aenter__()


_RUSTLS_VERSIONS = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


def _tls_versions(context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """The context's TLS version bounds as pyreqwest takes them (rustls: 1.2 and 1.3).

    A lower bound under TLS 1.2 is met as it is (rustls offers nothing older); an upper
    bound under TLS 1.2 cannot be, and is refused.
    """
    highest = context.maximum_version
    if highest not in _RUSTLS_VERSIONS and highest is not ssl.TLSVersion.MAXIMUM_SUPPORTED:
        raise ConfigError(
            f"ssl_context.maximum_version={highest.name}: the pyreqwest transport (rustls) "
            "speaks TLS 1.2 and 1.3 only"
        )
    return _RUSTLS_VERSIONS.get(context.minimum_version), _RUSTLS_VERSIONS.get(highest)


def _causes(exc: BaseException) -> list[str]:
    details = getattr(exc, "details", None)
    causes = details.get("causes") if isinstance(details, dict) else None
    return [str(c.get("message", "")) for c in causes or ()]


def _connect_error(causes: list[str]) -> ErrorCode:
    """The code of a ``ConnectError``: its causes tell the connect phase from a later one."""
    lowered = [c.lower() for c in causes]
    if "client error (connect)" not in lowered:
        # The request went out (``client error (SendRequest)``): the connection closed
        # or was reset before a complete answer, which aiohttp reports the same way.
        return ErrorCode.PROTOCOL_ERROR
    text = " ".join(lowered)
    if "dns error" in text or "failed to lookup address" in text:
        return ErrorCode.DNS_ERROR
    if any(word in text for word in _TLS_WORDS):
        return ErrorCode.TLS_ERROR
    return ErrorCode.CONNECT_ERROR


def _head_timeout(timeout: TimeoutConfig, waited: float | None) -> ErrorCode:
    """Connect or read timeout, for a timeout that came before the response head.

    pyreqwest reports both as ``ConnectTimeoutError``. Its read timer starts once the
    request is written, so one that fired sooner than ``read`` after sending was the
    connect timer; otherwise it is taken for a read timeout, which is never retried for
    a non-idempotent method (the safe side).
    """
    if timeout.read is None:
        return ErrorCode.CONNECT_TIMEOUT
    if timeout.connect is not None and waited is not None and waited < timeout.read:
        return ErrorCode.CONNECT_TIMEOUT
    return ErrorCode.READ_TIMEOUT
