"""``AiohttpTransport``: the default HTTP/1.1 transport, on an aiohttp connection pool.

Why aiohttp: on this project's loopback benchmark it moves several times the requests
per second of httpx at 64 concurrent requests (DESIGN §4). What aiohttp lacks we add
here: a **pool timeout** (``max_connections`` slots with a FIFO of waiters, so waiting
for a connection fails with ``POOL_TIMEOUT`` instead of hanging), the request's
absolute **deadline**, and the translation of every aiohttp, OS, SSL and asyncio error
to one :class:`ErrorCode`.

Timeouts: aiohttp keeps only the connect timer (armed for new connections). The read
timeout (no data for ``read`` seconds, restarted per chunk) and the deadline are held
by one :class:`~flext_api.transports._watchdog.Watchdog` per transport instead of two
aiohttp timers per request, which cost ~12 µs per request on the benchmark. A streamed
body is held to the read timeout per chunk, not to the deadline: the caller reads it at
its own pace.

Sending: a request goes straight to aiohttp's request objects (``ClientRequest``, the
connector, ``ClientResponse.start``) rather than through ``ClientSession.request``, whose
cookie jar, proxy, netrc, trace and redirect steps this transport does not use and
which cost about 14 µs per request on the benchmark (see ``_direct_params``). A URL
with credentials in it, or an aiohttp whose objects have another shape, goes through
``session.request``; both ways are tested against the same servers.

Known limits: aiohttp has no separate write timeout (a slow upload is bounded by the
deadline) and no cap on idle keep-alive connections (``max_keepalive`` applies to the
httpx2 transport only).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from yarl import URL

from .._clock import Clock, get_clock, system_clock
from .._config import DEFAULT_MAX_RESPONSE_SIZE, PoolConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from ._base import (
    INVALID_MESSAGE,
    body_failed,
    check_declared,
    check_status,
    deadline_before_sending,
    latin1_headers,
    map_os_error,
    too_large,
    transport_error,
    watchdog_error,
)
from ._decoding import BodyDecodeError, BodyDecoder, body_decoder, decode_all, decode_into
from ._slots import PoolSlots
from ._watchdog import Watch, Watchdog

__all__ = ["AiohttpTransport"]

_HTTP11 = aiohttp.HttpVersion11
_SKIP_USER_AGENT = ("User-Agent",)
_SKIP_PASSTHROUGH = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_SCHEMES = frozenset({"http", "https"})
_NO_TRACES: list[Any] = []  # never appended to: aiohttp only iterates it


def _direct_params() -> frozenset[str] | None:
    """The response-parser settings this aiohttp accepts, or None: no direct path.

    The direct path drives aiohttp's own request objects (``ClientRequest``,
    ``BaseConnector.connect``, ``ClientRequest.send``, ``ClientResponse.start``)
    instead of ``ClientSession._request``, which on the benchmark costs about 14 µs per
    request in steps this transport does not use (cookie jar, proxies, netrc, traces,
    redirects, its own timers). It is taken only when those objects have the shape it
    was written against; otherwise every request goes through ``session.request``.
    """
    try:
        request_params = inspect.signature(aiohttp.ClientRequest.__init__).parameters
        response_params = inspect.signature(ResponseHandler.set_response_params).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        return None
    needed_request = {
        "headers", "skip_auto_headers", "data", "loop", "response_class",
        "timer", "session", "ssl", "traces", "trust_env",
    }  # fmt: skip
    needed_response = {"timer", "skip_payload", "read_until_eof", "auto_decompress"}
    if not needed_request <= request_params.keys() or not needed_response <= (
        response_params.keys()
    ):
        return None  # an aiohttp this path was not written for
    try:
        send = list(inspect.signature(aiohttp.ClientRequest.send).parameters)
        start = list(inspect.signature(aiohttp.ClientResponse.start).parameters)
        connect = inspect.signature(aiohttp.BaseConnector.connect).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        return None
    if len(send) != 2 or len(start) != 2 or not {"req", "traces", "timeout"} <= connect.keys():
        return None  # each takes the connection only (and the connector a request)
    return frozenset(response_params) - {"self"}


_DIRECT_PARAMS = _direct_params()
_NOOP_TIMER = aiohttp.helpers.TimerNoop()


#: URL string -> parsed URL: a client sends many requests to the same few URLs, and a
#: dict hit costs a small fraction of a parse (URLs are immutable, so one serves every
#: request). Bounded: emptied when it reaches the limit.
_URLS: dict[str, URL] = {}
_URLS_MAX = 1024


def _url_of(text: str) -> URL:
    url = _URLS.get(text)
    if url is None:
        url = URL(text, encoded=True)
        if len(_URLS) >= _URLS_MAX:
            _URLS.clear()
        _URLS[text] = url
    return url


def _has_user_agent(headers: list[tuple[str, str]]) -> bool:
    for name, _ in headers:  # noqa: SIM110 - any() over a generator costs more per request
        if len(name) == 10 and name.lower() == "user-agent":
            return True
    return False


class _FailingResponseHandler(ResponseHandler):
    """aiohttp's ``ResponseHandler``, made to fail the body being read when parsing fails.

    With aiohttp's compiled parser, a body that stops parsing after the head was handed
    out (an invalid chunk size, say) raises in the protocol's ``data_received``; aiohttp
    puts that error on the protocol, closes the connection and drops its read timer, but
    never on the body's stream, so a reader of the body waits for ever (its pure-Python
    parser fails the stream). Here the error also fails a body that is still open, as a
    ``ClientPayloadError`` (PROTOCOL_ERROR), at once.
    """

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        super().set_exception(exc, *args)
        payload = getattr(self, "_payload", None)
        if (
            isinstance(payload, aiohttp.StreamReader)
            and not payload.is_eof()
            and payload.exception() is None
        ):
            error = aiohttp.ClientPayloadError(f"Response payload is not valid: {exc!r}")
            error.__cause__ = exc
            payload.set_exception(error)


class _WatchedConnector(aiohttp.TCPConnector):
    """A TCPConnector that stops the read clock while a new connection is made.

    aiohttp's own ``sock_connect`` timer bounds the connect phase; the watchdog's read
    timeout starts again once the connection is up, so a read timeout means what it
    says whether the connection was new or reused.
    """

    def __init__(self, *args: Any, watchdog: Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flext_watchdog = watchdog
        factory: Any = getattr(self, "_factory", None)
        if isinstance(factory, functools.partial):
            # The connector's protocol factory (a partial of ResponseHandler): ours.
            ours: Any = functools.partial(
                _FailingResponseHandler, *factory.args, **factory.keywords
            )
            self._factory = ours

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        dog = self._flext_watchdog
        watch = dog.current()
        dog.pause(watch)
        try:
            return await super()._create_connection(req, traces, timeout)
        finally:
            dog.reading(watch)


class AiohttpTransport:
    """HTTP/1.1 over aiohttp with a bounded, keep-alive pool.

    Args:
        pool: pool sizes and keep-alive (defaults from :class:`PoolConfig`).
        timeout: per-phase timeouts used when a request carries none.
        ssl_context: an ``ssl.SSLContext`` (e.g. trusting a private CA).
        verify: False disables certificate checks (never do this in production).
        clock: monotonic clock used for deadlines and ``elapsed``.
        direct: False sends every request through ``session.request`` (slower; for
            comparing the two ways when chasing an aiohttp behaviour).
        passthrough: True for a proxy: bodies are not decompressed and no header of
            aiohttp's own (Accept, Accept-Encoding, User-Agent, Content-Type) is added.
        max_response_size: bytes a buffered body may reach once decompressed (None: no
            cap); past it the request fails with ``RESPONSE_TOO_LARGE`` and the
            connection is closed. Streamed bodies are not capped.
    """

    name = "aiohttp"

    def __init__(
        self,
        pool: PoolConfig | None = None,
        timeout: TimeoutConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        clock: Clock | None = None,
        direct: bool = True,
        passthrough: bool = False,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._passthrough = passthrough
        self._max_body = max_response_size
        self._pool = pool or PoolConfig()
        self._timeout = timeout or TimeoutConfig()
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else verify
        self._clock = get_clock(clock)
        self._session: aiohttp.ClientSession | None = None
        self._connector: aiohttp.BaseConnector | None = None
        # Response-parser settings of the direct path (GET..., HEAD), or None to send
        # through session.request (see _direct_params).
        self._direct_on = direct and _DIRECT_PARAMS is not None
        self._parser: dict[str, Any] = {}
        self._head_parser: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_is_clock = False
        self._watchdog = Watchdog()
        self._connect_timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        # Pool slots: a counter and a FIFO of waiters (cheaper than asyncio.Semaphore,
        # whose locked() scans its waiters on every acquire).
        self._slots = PoolSlots(self._pool.max_connections)
        self._in_use = 0
        self._closed = False

    # -- pool -------------------------------------------------------------------------------
    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "transport is closed")
        pool = self._pool
        connector = _WatchedConnector(
            watchdog=self._watchdog,
            limit=pool.max_connections,
            limit_per_host=pool.max_connections_per_host,
            keepalive_timeout=pool.keepalive_expiry,
            use_dns_cache=pool.dns_cache_ttl > 0,
            ttl_dns_cache=int(pool.dns_cache_ttl) or None,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            # A service client shared by many callers must not carry one caller's cookies
            # into another's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies are decoded by this transport (_decoding): aiohttp's decoder passes a
            # gzip body cut inside its compressed stream off as complete.
            auto_decompress=False,
            trust_env=False,
        )
        # aiohttp resends an idempotent request once, silently, when a connection drops.
        # Retries belong to the pipeline's retry stage, which counts and bounds them (and
        # retries the same idempotent cases), so the hidden resend is turned off, as
        # aiohttp's own test client does.
        self._session._retry_connection = False
        self._connector = connector
        self._loop = asyncio.get_running_loop()
        # asyncio's own loop reads time.monotonic, as the system clock does: one reading
        # per request then serves both (uvloop and test clocks have clocks of their own).
        self._loop_is_clock = self._clock is system_clock and (
            type(self._loop).time is asyncio.BaseEventLoop.time
        )
        if self._direct_on and _DIRECT_PARAMS is not None:
            session = self._session
            # The settings session.request would give the response parser.
            settings = {
                "timer": _NOOP_TIMER,
                "skip_payload": False,
                "read_until_eof": True,
                "auto_decompress": False,
                "read_timeout": None,
                "read_bufsize": getattr(session, "_read_bufsize", 2**16),
                "timeout_ceil_threshold": getattr(connector, "_timeout_ceil_threshold", 5),
                "max_line_size": getattr(session, "_max_line_size", 8190),
                "max_field_size": getattr(session, "_max_field_size", 8190),
                "max_headers": getattr(session, "_max_headers", 128),
            }
            self._parser = {k: v for k, v in settings.items() if k in _DIRECT_PARAMS}
            self._head_parser = {**self._parser, "skip_payload": True}
        return self._session

    def _connect_timeout(self, connect: float | None) -> aiohttp.ClientTimeout:
        # Only the connect phase is left to aiohttp: its timer is armed for new
        # connections only. Reads and the deadline are the watchdog's.
        cached = self._connect_timeouts.get(connect)
        if cached is None:
            cached = aiohttp.ClientTimeout(total=None, sock_connect=connect)
            self._connect_timeouts[connect] = cached
        return cached

    def _give_back(self) -> None:
        self._in_use -= 1
        self._slots.give()

    # -- sending ----------------------------------------------------------------------------
    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Send one request; see :class:`~flext_api.transports.Transport`."""
        session = self._session or self._open()
        timeout = request.timeout or self._timeout
        clock = self._clock
        start = clock.monotonic()
        remaining = None if request.deadline is None else request.deadline - start
        if remaining is not None and remaining <= 0:
            raise deadline_before_sending(request)
        now = start
        slots = self._slots
        if slots.free > 0 and not slots.waiters:
            slots.free -= 1
        else:
            await slots.wait(request, timeout, remaining)
            now = clock.monotonic()
            if request.deadline is not None:
                remaining = request.deadline - now
        self._in_use += 1
        held = True  # this call holds a pool slot until it gives it back (or a stream's close)
        dog = self._watchdog
        if not self._loop_is_clock:
            # The watchdog runs on the loop's clock: translate the deadline to it.
            assert self._loop is not None
            now = self._loop.time()
        # On the loop's clock from here (the same reading when the two clocks are one).
        loop_deadline = None if remaining is None else now + remaining
        watch = dog.start(loop_deadline, timeout.read, now)
        connecting = True
        resp: aiohttp.ClientResponse | None = None
        try:
            data: Any = request.content if request.stream is None else request.stream
            headers = request.headers.raw()
            # aiohttp adds its own User-Agent to a request without one; asking it not to
            # costs ~1.5 µs, so it is asked only when there is none.
            if self._passthrough:
                skip: tuple[str, ...] | None = _SKIP_PASSTHROUGH
            else:
                skip = None if _has_user_agent(headers) else _SKIP_USER_AGENT
            url = _url_of(request.url)
            if self._direct_on and url.raw_user is None:
                resp = await self._exchange(
                    session, request.method, url, headers, skip, data, timeout.connect
                )
            else:
                resp = await session.request(
                    request.method,
                    url,
                    headers=headers,
                    skip_auto_headers=skip,
                    data=data,
                    allow_redirects=False,
                    timeout=self._connect_timeout(timeout.connect),
                )
            connecting = False
            if not 100 <= resp.status <= 599:  # inline: the usual answer costs no call
                check_status(resp.status, request)
            # One header look-up per answer; a decoder only for a compressed body.
            received = resp.headers
            coding = received.get("Content-Encoding")
            decoder = None if coding is None or self._passthrough else body_decoder(coding)
            version = resp.version
            # A body that arrived whole with its head (the usual small answer) is not
            # streamed even when asked: the bytes are in memory already, and handing
            # them over at once saves the stream's per-chunk machinery.
            streamed = stream and not resp.content.is_eof()
            response = HttpResponse(
                resp.status,
                headers=Headers.from_pairs(
                    list(received.items())
                    if "".join(received.values()).isascii()  # one check for the usual head
                    else latin1_headers(resp.raw_headers)
                ),
                url=request.url,
                http_version="HTTP/1.1"
                if version is None or version == _HTTP11
                else f"HTTP/{version.major}.{version.minor}",
                reason=resp.reason or "",
                request=request,
                stream=self._iter_body(resp, request, timeout.read, decoder) if streamed else None,
                close=_closer(resp, self._give_back) if streamed else None,
            )
            if streamed:
                held = False  # the response's close() gives the slot back
            else:
                content = resp.content
                limit = self._max_body
                if content.is_eof():
                    # The usual small answer arrived with its headers: taken without the
                    # coroutine of a read.
                    body = content.read_nowait()
                    if decoder is not None:
                        body = decode_all(decoder, body, request, limit)
                    elif limit is not None and len(body) > limit:
                        raise too_large(request, limit)
                else:
                    check_declared(request, limit, resp.content_length)
                    body = await _read_all(content, dog, watch, request, limit, decoder)
                response._content = body
                resp.release()
                held = False
                self._give_back()
            response.elapsed = clock.monotonic() - start
            return response
        except asyncio.CancelledError as exc:
            if resp is not None:
                resp.close()
            if held:
                self._give_back()
            code = dog.expired(watch)
            if code is None:
                raise
            raise self._timeout_error(code, request, timeout, connecting) from exc
        except BaseException as exc:
            if resp is not None:
                resp.close()
            if held:
                self._give_back()
            if isinstance(exc, Exception):
                error = self._translate(exc, request, connecting=connecting)
                raise error from error.__cause__
            raise
        finally:
            dog.stop(watch)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        skip: tuple[str, ...] | None,
        data: Any,
        connect: float | None,
    ) -> aiohttp.ClientResponse:
        """One exchange on aiohttp's request objects: the direct path (_direct_params).

        Does what ``ClientSession._request`` does for this transport's requests (no
        cookies, proxies, credentials in the URL, traces or redirects), in the same
        order and with the same clean-up: connect, send, read the status line and
        headers; the connection is closed on any failure.
        """
        if url.scheme not in _SCHEMES:
            raise aiohttp.InvalidURL(url)
        connector = self._connector
        assert connector is not None
        req = aiohttp.ClientRequest(
            method,
            url,
            headers=headers,
            skip_auto_headers=skip,
            data=data,
            loop=self._loop,
            response_class=aiohttp.ClientResponse,
            timer=_NOOP_TIMER,
            session=session,
            ssl=True,  # the connector's SSL settings
            traces=_NO_TRACES,
            trust_env=False,
        )
        try:
            conn = await connector.connect(
                req, traces=_NO_TRACES, timeout=self._connect_timeout(connect)
            )
        except TimeoutError as exc:
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}") from exc
        protocol = conn.protocol
        assert protocol is not None
        protocol.set_response_params(**(self._head_parser if method == "HEAD" else self._parser))
        try:
            resp = await req.send(conn)
            try:
                await resp.start(conn)
            except BaseException:
                resp.close()
                raise
        except BaseException:
            conn.close()
            raise
        return resp

    @staticmethod
    def _timeout_error(
        code: ErrorCode, request: HttpRequest, timeout: TimeoutConfig, connecting: bool
    ) -> FlextApiError:
        waiting_for = "the response headers" if connecting else "the response body"
        return watchdog_error(code, request, timeout.read, waiting_for)

    async def _iter_body(
        self,
        resp: aiohttp.ClientResponse,
        request: HttpRequest,
        read: float | None,
        decoder: BodyDecoder | None = None,
    ) -> AsyncIterator[bytes]:
        # The caller reads a stream at its own pace, maybe from another task: each read
        # gets its own watch, and only the read timeout applies (not the deadline).
        dog = self._watchdog
        content = resp.content
        while True:
            watch = dog.start(None, read)
            dog.reading(watch)
            try:
                chunk = await content.readany()
            except asyncio.CancelledError as exc:
                if dog.expired(watch) is None:
                    raise
                raise self._timeout_error(
                    ErrorCode.READ_TIMEOUT, request, request.timeout or self._timeout, False
                ) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._translate(exc, request, connecting=False) from exc
            finally:
                dog.stop(watch)
            if decoder is None:
                if not chunk:
                    return
                yield chunk
                continue
            try:
                for piece in decoder.step(chunk or None):  # pieces of a bounded size
                    yield piece
            except BodyDecodeError as exc:
                raise self._translate(exc, request, connecting=False) from exc
            if not chunk:
                return

    def _translate(
        self, exc: Exception, request: HttpRequest, *, connecting: bool
    ) -> FlextApiError:
        """Map one aiohttp/OS/SSL/asyncio error to the most specific code (the only place)."""
        if isinstance(exc, FlextApiError):
            return exc
        failed_body = _body_failure(exc)
        if failed_body is not None:
            # The request body's own source raised (a gone client, a failed file): as on
            # H1Transport, UNEXPECTED_ERROR caused by that error, not a connect failure.
            return body_failed(request, failed_body)
        deadline_passed = request.deadline is not None and self._clock.monotonic() >= (
            request.deadline - 0.001
        )
        code: ErrorCode
        if isinstance(exc, BodyDecodeError):
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, aiohttp.ClientConnectorDNSError):
            code = ErrorCode.DNS_ERROR
        elif isinstance(
            exc,
            aiohttp.ClientConnectorCertificateError
            | aiohttp.ClientConnectorSSLError
            | aiohttp.ClientSSLError,
        ):
            code = ErrorCode.TLS_ERROR
        elif isinstance(exc, aiohttp.ConnectionTimeoutError):
            code = ErrorCode.DEADLINE_EXCEEDED if deadline_passed else ErrorCode.CONNECT_TIMEOUT
        elif isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
            code = ErrorCode.DEADLINE_EXCEEDED if deadline_passed else ErrorCode.READ_TIMEOUT
            if (
                code is ErrorCode.READ_TIMEOUT
                and connecting
                and not isinstance(exc, aiohttp.SocketTimeoutError)
            ):
                code = ErrorCode.CONNECT_TIMEOUT
        elif isinstance(exc, aiohttp.ClientConnectorError):
            code = map_os_error(exc.os_error, connecting=True)
        elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
            code = ErrorCode.PROTOCOL_ERROR
        elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError | ValueError):
            code = ErrorCode.INVALID_REQUEST
        elif isinstance(exc, aiohttp.ClientResponseError):
            # What aiohttp's parser refused (HttpProcessingError): an answer that is not
            # HTTP, as opposed to a connection closed early (ServerDisconnectedError).
            err = transport_error(
                ErrorCode.PROTOCOL_ERROR, _describe(exc, ErrorCode.PROTOCOL_ERROR, request),
                request, exc,
            )  # fmt: skip
            err.details["reason"] = INVALID_MESSAGE
            return err
        elif isinstance(exc, aiohttp.ClientOSError | OSError):
            # Connect failures arrive as ClientConnectorError (above); an OS error here
            # happened on an established connection (reset while sending or reading).
            code = map_os_error(exc, connecting=False)
        elif isinstance(exc, aiohttp.ClientError):
            code = ErrorCode.CONNECT_ERROR if connecting else ErrorCode.PROTOCOL_ERROR
        else:
            code = ErrorCode.UNEXPECTED_ERROR
        message = _describe(exc, code, request)
        return transport_error(code, message, request, exc)

    # -- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the pool; idempotent."""
        self._closed = True
        self._watchdog.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def stats(self) -> dict[str, Any]:
        """Pool figures (slots in use, waiting for a slot, idle keep-alive connections)."""
        idle = 0
        session = self._session
        if session is not None and session.connector is not None:
            conns = getattr(session.connector, "_conns", {})
            idle = sum(len(v) for v in conns.values())
        return {
            "transport": self.name,
            "max_connections": self._pool.max_connections,
            "in_use": self._in_use,
            "waiting": self._slots.waiting,
            "idle": idle,
        }

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<AiohttpTransport [Requests: {s['in_use']} active, {s['waiting']} queued | "
            f"Connections: {s['idle']} idle, max {s['max_connections']}]>"
        )


def _body_failure(exc: BaseException) -> BaseException | None:
    """The request body's own error, when aiohttp wrapped it in the connection error it
    raises for a body that could not be sent ("Failed to send bytes ..."); None for an
    error of the connection itself (an OSError, aiohttp's own)."""
    cause = exc.__cause__
    if not isinstance(exc, aiohttp.ClientConnectionError) or cause is None:
        return None
    if isinstance(cause, OSError | aiohttp.ClientError | asyncio.CancelledError):
        return None
    return cause


async def _read_all(
    content: aiohttp.StreamReader,
    dog: Watchdog,
    watch: Watch | None,
    request: HttpRequest,
    limit: int | None,
    decoder: BodyDecoder | None = None,
) -> bytes:
    """Read a whole body still arriving, restarting the read clock for every chunk, and
    stop with RESPONSE_TOO_LARGE once it passes ``limit`` bytes (decoded)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        dog.reading(watch)
        chunk = await content.readany()
        size = decode_into(chunks, size, decoder, chunk, request, limit)
        if not chunk:
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def _closer(resp: aiohttp.ClientResponse, give_back: Callable[[], None]) -> Any:
    # HttpResponse.aclose() calls this at most once.
    async def close() -> None:
        # release() returns a fully read connection to the pool and closes a partly read one.
        resp.release()
        give_back()

    return close


def _describe(exc: BaseException, code: ErrorCode, request: HttpRequest) -> str:
    target = f"{request.method} {request.host}"
    detail = str(exc) or type(exc).__name__
    if code is ErrorCode.PROTOCOL_ERROR and isinstance(exc, aiohttp.ServerDisconnectedError):
        detail = "server closed the connection without a complete response"
    return f"{code.value.lower().replace('_', ' ')} on {target}: {detail}"
