"""``H1Transport``: HTTP/1.1 over plain asyncio protocols and httptools' response parser.

Why: a reverse proxy moves many small exchanges, and on this project's gateway bench the
aiohttp client's request and response objects (URL, multidict, stream reader, payload
writer) cost more per request than the whole of a minimal proxy's serving side. This
transport writes the request head as one ``bytes`` join, feeds the answer to httptools'
C parser and hands the body over as the parser gives it: a small answer arrives with its
head and is returned whole without a stream; a large one is streamed with flow control
(reading from the upstream pauses past 256 KiB buffered and resumes when the reader
caught up; writing waits for the socket buffer to drain).

Pool: keep-alive connections per origin (``host:port``), most recently used first, at most
``max_connections`` requests in flight (a FIFO of waiters, ``POOL_TIMEOUT`` when none frees
in time) and ``max_connections`` open connections, at most ``max_keepalive`` idle ones, each
closed after ``keepalive_expiry`` seconds idle. A connection goes back to the pool only
after a complete exchange the upstream did not ask to close.

Timeouts: the connect timeout bounds new connections; the read timeout (silence between
reads, also between writes of a request body) and the deadline are held by the shared
:class:`~flext_api.transports._watchdog.Watchdog`, as in the aiohttp transport.

Errors map to the same codes as the aiohttp transport: refused -> ``CONNECT_ERROR``, slow
connect -> ``CONNECT_TIMEOUT``, silence -> ``READ_TIMEOUT``, past the deadline ->
``DEADLINE_EXCEEDED``, a connection closed or reset before the end of the answer, or an
answer that is not HTTP/1.x -> ``PROTOCOL_ERROR`` (a streamed body raises it from the
stream, so a proxy cuts its client's stream instead of passing a short body off as whole).
Nothing is ever sent twice: retries are the caller's decision.

Scope: ``http://`` URLs. Other schemes go to ``fallback`` (a transport such as
:class:`~flext_api.transports.AiohttpTransport` for ``https://``) or fail with
``INVALID_REQUEST``. Bodies are passed as they are (no decompression), which is what a
proxy needs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import httptools

from .._clock import Clock, get_clock
from .._config import DEFAULT_MAX_RESPONSE_SIZE, PoolConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from ._base import (
    INVALID_MESSAGE,
    BodyFailed,
    Transport,
    body_failed,
    check_declared,
    check_status,
    deadline_before_sending,
    map_os_error,
    too_large,
    transport_error,
    watchdog_error,
)
from ._decoding import decode_into
from ._slots import PoolSlots
from ._watchdog import Watch, Watchdog

__all__ = ["RAW_HEADERS", "H1Transport"]

#: ``request.extensions[RAW_HEADERS]``: ``(bytes, bytes)`` pairs sent instead of
#: ``request.headers``; ``response.extensions[RAW_HEADERS]``: the answer's pairs as
#: received. A proxy passes headers through without a round trip to ``str``.
RAW_HEADERS = "raw_headers"

_HIGH_WATER = 256 * 1024
#: An upstream's response head larger than this is refused (aiohttp's per-line bound is
#: 8 KiB; llhttp has none of its own).
MAX_RESPONSE_HEAD = 64 * 1024
_LOW_WATER = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_KNOWN_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_MAX_PORT = 65535


def _framed_by_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when a response's body ends with the connection (RFC 9112 §6.3): it has
    neither Content-Length nor Transfer-Encoding, or a Transfer-Encoding whose final
    coding is not ``chunked`` (which overrides any Content-Length)."""
    codings = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    if codings:
        final = b",".join(codings).rsplit(b",", 1)[-1].strip().lower()
        return final != b"chunked"
    return not any(n.lower() in _KNOWN_FRAMING for n, _ in headers)


class _Conn(asyncio.Protocol):
    """One upstream connection and the state of the exchange it carries."""

    __slots__ = (
        "alive",
        "buffered",
        "chunks",
        "done",
        "drain_waiter",
        "eof_framed",
        "error",
        "head",
        "head_bytes",
        "idle_since",
        "interim",
        "loop",
        "origin",
        "parser",
        "paused_reading",
        "paused_writing",
        "pump",
        "raw_headers",
        "reusable",
        "stray",
        "trailing",
        "transport",
        "waiter",
    )

    def __init__(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.alive = True
        self.idle_since = 0.0
        self.head: asyncio.Future[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.done = False
        self.interim = False
        self.eof_framed = False
        self.reusable = True
        self.stray = False
        self.trailing = False  # the head is complete: fields now are trailer fields
        self.error: BaseException | None = None
        self.paused_reading = False
        self.paused_writing = False
        #: The task writing a streamed request body, while it does: woken (cancelled)
        #: when the upstream answers or goes away, since it may be waiting on a source
        #: that sends nothing more (a stalled client). Set to None by the wake.
        self.pump: asyncio.Task[Any] | None = None

    # -- exchange ---------------------------------------------------------------------------
    def begin(self) -> asyncio.Future[None]:
        """Start a new exchange on this connection; the future resolves with the head."""
        self.head = head = self.loop.create_future()
        self.raw_headers = []
        self.head_bytes = 0
        self.done = False
        self.eof_framed = False
        self.trailing = False
        return head

    def take_body(self) -> bytes:
        """Everything buffered, joined (the parser's pieces of one read)."""
        chunks = self.chunks
        if len(chunks) == 1:
            chunk = chunks.popleft()
        else:
            chunk = b"".join(chunks)
            chunks.clear()
        self.buffered = 0
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
        return chunk

    async def read(self) -> bytes:
        """The next piece of the body, b"" at its end; raises when the connection broke."""
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            self.waiter = waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        return self.take_body()

    async def drain(self) -> None:
        """Wait until the socket's write buffer is below its high-water mark, or the
        upstream has answered (an early 413 while it no longer reads the upload)."""
        if self.paused_writing and not self.answered():
            self.drain_waiter = waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self.drain_waiter = None
        if not self.alive and not self.answered():
            raise ConnectionResetError("the upstream closed the connection while sending")

    def answered(self) -> bool:
        """True once the head of this exchange's answer has arrived (the upload is moot)."""
        head = self.head
        return (
            head is not None and head.done() and not head.cancelled() and head.exception() is None
        )

    def close(self) -> None:
        """Close the socket (the exchange, if any, is abandoned)."""
        self.reusable = False
        if self.alive:
            self.alive = False
            self.origin.forget(self)
        transport = self.transport
        if transport is not None:  # pragma: no branch - set once connected
            if transport.get_write_buffer_size():
                # Unsent upload bytes: close() would wait for them to be written, and an
                # upstream that stopped reading would keep the socket open for ever.
                transport.abort()
            else:
                transport.close()

    def abandon(self) -> None:
        """Give up the exchange: close, and leave no failed head unseen (no stray warning).

        A head still pending (the request body failed, a timeout or a cancellation came
        first) is cancelled: nobody awaits it any more, and ``connection_lost``, which
        comes after the close, would fail it with an error no one retrieves ("Future
        exception was never retrieved", logged when it is collected).
        """
        head = self.head
        if head is not None:
            if not head.done():
                head.cancel()
            elif not head.cancelled():
                head.exception()
        self.close()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.head is None:
            self.close()  # bytes on an idle connection: nothing can be trusted on it
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # A 101 (or an upgrade the upstream granted): the HTTP exchange ends with its
            # head and what follows is another protocol, not this transport's to read.
            # Escaping data_received, the error was logged by asyncio as a fatal one.
            # The connection is never reused (on_headers_complete said so).
            self.done = True
            self._wake()
        except httptools.HttpParserError as exc:
            if self.stray:
                self.close()  # the answer stands; what came after it is nobody's
            else:
                self._broken(exc)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self.alive:
            self.alive = False
            self.origin.forget(self)
        head = self.head
        if head is None:
            return
        if not head.done():
            head.set_exception(
                exc or ConnectionResetError("the upstream closed the connection before answering")
            )
        elif not self.done and self.error is None:  # a parser error stays the reason
            if self.eof_framed and exc is None:
                self.done = True  # a body delimited by the end of the connection
            else:
                self.error = exc or ConnectionResetError(
                    "the upstream closed the connection before the end of the body"
                )
        self._wake()
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.pump is not None:
            self._stop_pump()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.done:
            # Bytes after the whole answer of this exchange (a 204 or 304 with a body, a
            # body longer than its Content-Length): they answer no request. Parsed on,
            # they were taken for this exchange's answer (its status, headers and body),
            # or, on a reused connection, for the next one's. The parser stops here, the
            # answer stands, and the connection is closed.
            self.stray = True
            raise ValueError("bytes after the end of the upstream's answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_RESPONSE_HEAD:
            raise ValueError(f"the upstream's response head is over {MAX_RESPONSE_HEAD} bytes")
        if self.trailing:
            # A trailer field after a chunked body (httptools reports it like a header).
            # Never merged into the header section (RFC 9110 §6.5.1): when the answer
            # came in one read, a trailer Set-Cookie, Location or Content-Length was
            # among the headers before the caller read them. Dropped, counted above.
            return
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # below 100: send() refuses it
            self.interim = True  # 100 Continue and friends: the real answer follows
            self.raw_headers = []
            return
        self.trailing = True
        head = self.head
        assert head is not None
        if status == 101 or not self.parser.should_keep_alive():
            # After a 101 the connection speaks another protocol: never an HTTP one again.
            self.reusable = False
        if status not in (204, 304) and _framed_by_close(self.raw_headers):
            self.eof_framed = True
            self.reusable = False
        if not head.done():  # pragma: no branch - done only if the sender gave up
            head.set_result(None)
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # an upload stalled on the socket stops: answered
        if self.pump is not None:
            self._stop_pump()  # and so does one waiting for its source: the upload is moot

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop_pump(self) -> None:
        """Cancel the task writing the request body (see :meth:`H1Transport._write_body`,
        which tells this cancellation from others by ``pump`` being None)."""
        pump, self.pump = self.pump, None
        assert pump is not None
        pump.cancel()

    def _broken(self, exc: BaseException) -> None:
        head = self.head
        if head is not None and not head.done():
            head.set_exception(exc)
        elif self.error is None:
            self.error = exc
        self._wake()
        if self.pump is not None:
            self._stop_pump()
        self.close()


class _Origin:
    """The idle connections to one ``host:port``, most recently used last."""

    __slots__ = ("conns", "host", "idle", "owner", "port")

    def __init__(self, owner: H1Transport, host: str, port: int) -> None:
        self.owner = owner
        self.host = host
        self.port = port
        self.idle: deque[_Conn] = deque()
        self.conns: set[_Conn] = set()

    def forget(self, conn: _Conn) -> None:
        """``conn`` closed (called once): drop it from the idle list and the open count."""
        if conn.idle_since > 0.0:
            conn.idle_since = 0.0
            self.idle.remove(conn)
            self.owner._idle_count -= 1
        self.conns.discard(conn)
        self.owner._open -= 1


def _check_length(raw: list[tuple[bytes, bytes]], request: HttpRequest, limit: int) -> None:
    """RESPONSE_TOO_LARGE when the head's ``Content-Length`` announces more than ``limit``."""
    for name, value in raw:
        if len(name) == 14 and name.lower() == b"content-length":
            check_declared(request, limit, value.decode("latin-1"))
            return


def _split(url: str) -> tuple[str, str] | None:
    """``(netloc, target)`` of an ``http://`` URL, or None for any other URL."""
    if not url.startswith("http://"):
        return None
    slash = url.find("/", 7)
    if slash != -1:  # the usual case: an authority, then a path
        netloc = url[7:slash]
        if "?" not in netloc and "#" not in netloc:
            target = url[slash:]
            return netloc, target.partition("#")[0] if "#" in target else target
    end = len(url)
    for stop in ("/", "?", "#"):
        at = url.find(stop, 7)
        if at != -1 and at < end:
            end = at
    target = url[end:].partition("#")[0]
    if not target.startswith("/"):
        target = "/" + target
    return url[7:end], target


class H1Transport:
    """HTTP/1.1 to ``http://`` upstreams on asyncio protocols (see the module docstring).

    Args:
        pool: connection limits and keep-alive (defaults from :class:`PoolConfig`).
        timeout: per-phase timeouts used when a request carries none.
        clock: monotonic clock used for deadlines and ``elapsed``.
        fallback: the transport for URLs that are not ``http://`` (e.g. ``https://``);
            closed with this one.
        max_response_size: bytes a buffered body may reach (None: no cap); past it the
            request fails with ``RESPONSE_TOO_LARGE``. Streamed bodies are not capped.
    """

    name = "h1"
    #: Takes ``request.extensions[RAW_HEADERS]`` (see :data:`RAW_HEADERS`).
    raw_headers = True

    def __init__(
        self,
        pool: PoolConfig | None = None,
        timeout: TimeoutConfig | None = None,
        *,
        clock: Clock | None = None,
        fallback: Transport | None = None,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._pool = pool or PoolConfig()
        self._max_body = max_response_size
        # Read per request: plain attributes, not the model's (hooked) attribute lookups.
        self._keepalive_expiry = self._pool.keepalive_expiry
        self._max_keepalive = self._pool.max_keepalive
        self._timeout = timeout or TimeoutConfig()
        self._clock = get_clock(clock)
        self._fallback = fallback
        self._origins: dict[str, _Origin] = {}
        self._watchdog = Watchdog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = PoolSlots(self._pool.max_connections)
        self._in_use = 0
        self._open = 0
        self._idle_count = 0
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    # -- connections ------------------------------------------------------------------------
    def _origin(self, netloc: str, request: HttpRequest) -> _Origin:
        origin = self._origins.get(netloc)
        if origin is None:
            host, sep, port = netloc.rpartition(":")
            if not sep or "]" in port:
                host, port = netloc, "80"
            bracketed = host.startswith("[")
            if (
                "@" in host
                or not host
                or not port.isdigit()
                or int(port) > _MAX_PORT
                # an IPv6 literal is one whole [...]: "[::1" is no host to look up
                or bracketed != host.endswith("]")
                or (not bracketed and ("[" in host or "]" in host))
            ):
                raise transport_error(
                    ErrorCode.INVALID_REQUEST,
                    f"unsupported URL authority {netloc!r}",
                    request,
                    None,
                )
            origin = _Origin(self, host.strip("[]"), int(port))
            self._origins[netloc] = origin
        return origin

    def _take_idle(self, origin: _Origin) -> _Conn | None:
        """The most recently used idle connection that has not expired, if any."""
        idle = origin.idle
        if not idle:
            return None
        conn = idle.pop()
        since, conn.idle_since = conn.idle_since, 0.0
        self._idle_count -= 1
        assert self._loop is not None
        if self._loop.time() - since >= self._keepalive_expiry:
            conn.close()  # and every older one: they expired before it
            while idle:
                idle[0].close()
            return None
        return conn

    async def _connect(
        self, origin: _Origin, request: HttpRequest, timeout: TimeoutConfig, watch: Watch | None
    ) -> _Conn:
        if self._open >= self._pool.max_connections:
            self._evict_one()
        loop = self._loop
        assert loop is not None
        dog = self._watchdog
        dog.pause(watch)
        self._open += 1
        try:
            async with asyncio.timeout(timeout.connect):
                _, conn = await loop.create_connection(
                    lambda: _Conn(origin, loop), origin.host, origin.port
                )
        except BaseException:
            self._open -= 1
            raise
        finally:
            dog.reading(watch)
        origin.conns.add(conn)
        return conn

    def _evict_one(self) -> None:
        for origin in self._origins.values():
            if origin.idle:
                origin.idle[0].close()  # connection_lost drops it from the counts
                return

    def _release(self, conn: _Conn) -> None:
        """The exchange on ``conn`` ended: keep it for the next one or close it."""
        conn.head = None
        if not (conn.reusable and conn.alive) or self._idle_count >= self._max_keepalive:
            conn.close()
            return
        assert self._loop is not None
        conn.idle_since = self._loop.time()
        conn.origin.idle.append(conn)
        self._idle_count += 1
        if self._sweep is None:
            self._sweep = self._loop.call_later(self._keepalive_expiry, self._expire)

    def _expire(self) -> None:
        """Close the connections idle for longer than ``keepalive_expiry``."""
        self._sweep = None
        assert self._loop is not None
        horizon = self._loop.time() - self._pool.keepalive_expiry
        oldest: float | None = None
        for origin in self._origins.values():
            idle = origin.idle
            while idle and idle[0].idle_since <= horizon:
                idle[0].close()  # removes it from the list
            if idle and (oldest is None or idle[0].idle_since < oldest):
                oldest = idle[0].idle_since
        if oldest is not None:
            self._sweep = self._loop.call_later(max(oldest - horizon, 0.01), self._expire)

    # -- sending ----------------------------------------------------------------------------
    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Send one request; see :class:`~flext_api.transports.Transport`."""
        split = _split(request.url)
        if split is None:
            if self._fallback is not None:
                raw = request.extensions.get(RAW_HEADERS)
                if raw is not None:
                    request.headers = Headers.from_pairs(
                        [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
                    )
                return await self._fallback.send(request, stream=stream)
            raise transport_error(
                ErrorCode.INVALID_REQUEST,
                f"{request.method} {request.host}: this transport sends http:// URLs only",
                request,
                None,
            )
        if self._closed:
            raise transport_error(ErrorCode.INVALID_REQUEST, "transport is closed", request, None)
        netloc, target = split
        origin = self._origin(netloc, request)
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
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
            if request.deadline is not None:
                remaining = request.deadline - clock.monotonic()
        self._in_use += 1
        dog = self._watchdog
        watch = dog.start(None if remaining is None else loop.time() + remaining, timeout.read)
        conn: _Conn | None = None
        connecting = True
        held = True  # the slot is given back here, or by a streamed response's close
        try:
            conn = self._take_idle(origin) or await self._connect(origin, request, timeout, watch)
            connecting = False
            head = conn.begin()
            dog.reading(watch)
            chunked = self._write_head(conn, request, netloc, target)
            if request.stream is not None:
                await self._write_body(conn, request.stream, chunked, watch)
            if not head.done():
                dog.reading(watch)
            await head
            if request.method == "HEAD":
                conn.done = True  # httptools cannot skip a HEAD answer's announced body
                conn.reusable = False
                if conn.chunks:
                    conn.take_body()  # bytes the upstream sent after it: never a HEAD body
            parser = conn.parser
            raw = conn.raw_headers
            status = parser.get_status_code()
            if not 100 <= status <= 599:
                check_status(status, request)
            version = parser.get_http_version()
            content: bytes | None = None
            body: AsyncIterator[bytes] | None = None
            close: Callable[[], Any] | None = None
            if conn.done:
                content = conn.take_body() if conn.chunks else b""
                limit = self._max_body
                if limit is not None and not stream and len(content) > limit:
                    raise too_large(request, limit)
                self._release(conn)
            elif stream:
                body = self._iter_body(conn, request, timeout.read)
                close = self._closer(conn)
                held = False
            else:
                if self._max_body is not None:
                    _check_length(raw, request, self._max_body)
                content = await self._read_all(conn, watch, request)
                self._release(conn)
            response = HttpResponse(
                status,
                headers=_RawHeaders.of(raw),
                content=content,
                url=request.url,
                http_version="HTTP/1.1" if version == "1.1" else f"HTTP/{version}",
                request=request,
                stream=body,
                close=close,
            )
            response.extensions[RAW_HEADERS] = raw
            response.elapsed = clock.monotonic() - start
            return response
        except asyncio.CancelledError as exc:
            if conn is not None:
                conn.abandon()
            code = dog.expired(watch)
            if code is None:
                raise
            raise self._timeout_error(code, request, timeout, connecting) from exc
        except BaseException as exc:
            if conn is not None:
                conn.abandon()
            if not isinstance(exc, Exception):
                raise
            error = self._translate(exc, request, connecting=connecting)
            raise error from error.__cause__
        finally:
            dog.stop(watch)
            if held:
                self._in_use -= 1
                self._slots.give()

    def _write_head(self, conn: _Conn, request: HttpRequest, netloc: str, target: str) -> bool:
        """Write the request head (and a ``content`` body); True when a stream follows
        chunked (no length given)."""
        method = request.method
        raw = request.extensions.get(RAW_HEADERS)
        if raw is None:
            headers = request.headers.raw()
            count = len(headers)
            block = "\r\n".join(
                [f"{method} {target} HTTP/1.1", *[f"{n}: {v}" for n, v in headers]]
            ).encode("latin-1")
        else:
            count = len(raw)
            line = f"{method} {target} HTTP/1.1".encode("latin-1")
            block = b"\r\n".join([line, *[n + b": " + v for n, v in raw]])
        if block.count(b"\n") != count or block.count(b"\r") != count:
            raise ValueError("a request header name or value contains CR or LF")
        low = block.lower()
        # find(), not ``in``: bytes.__contains__ tries its operand as an int first.
        extra = b"" if low.find(b"\r\nhost:") >= 0 else b"\r\nhost: " + netloc.encode("latin-1")
        content = request.content
        chunked = False
        if low.find(b"\r\ncontent-length:") < 0:
            if request.stream is not None:
                chunked = True
                if low.find(b"\r\ntransfer-encoding:") < 0:
                    extra += b"\r\ntransfer-encoding: chunked"
            elif content or method in _BODY_METHODS:
                extra += b"\r\ncontent-length: %d" % len(content or b"")
        head = block + extra + b"\r\n\r\n"
        transport = conn.transport
        assert transport is not None
        transport.write(head + content if content else head)
        return chunked

    async def _write_body(
        self, conn: _Conn, body: AsyncIterable[bytes], chunked: bool, watch: Watch | None
    ) -> None:
        """Write a streamed request body (chunked unless its length was given).

        Stops early, without an error, when the upstream answers or its connection is
        lost (the head then says which), even while ``body`` has nothing to give: the
        connection cancels this task (``conn.pump``), as the watchdog does for timeouts,
        so a stalled source never holds an exchange the upstream already ended.
        """
        transport = conn.transport
        assert transport is not None
        dog = self._watchdog
        source = aiter(body)
        upstream_head = conn.head
        assert upstream_head is not None
        task = watch.task if watch is not None else asyncio.current_task(self._loop)
        assert task is not None
        cancelling = task.cancelling()
        conn.pump = task
        try:
            while True:
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    # As guarded_body does; inline, to save an iterator per chunk.
                    raise BodyFailed(exc) from exc
                if upstream_head.done():
                    # Answered (or closed) before the body ended: the rest is moot, and
                    # the head says which.
                    conn.reusable = False
                    return
                if chunk:
                    transport.writelines(
                        (b"%x\r\n" % len(chunk), chunk, b"\r\n") if chunked else (chunk,)
                    )
                    if conn.paused_writing:
                        await conn.drain()
                dog.reading(watch)
        except asyncio.CancelledError:
            # The connection's wake (it unset pump) and nobody else's: the head says why.
            if conn.pump is task or task.uncancel() > cancelling:
                raise
            conn.reusable = False
            return
        finally:
            conn.pump = None
        if chunked and conn.alive:
            transport.write(b"0\r\n\r\n")

    async def _read_all(self, conn: _Conn, watch: Watch | None, request: HttpRequest) -> bytes:
        chunks: list[bytes] = []
        dog = self._watchdog
        limit = self._max_body
        size = 0
        while True:
            dog.reading(watch)
            chunk = await conn.read()
            if not chunk:
                return b"".join(chunks)
            size = decode_into(chunks, size, None, chunk, request, limit)  # counts, caps

    async def _iter_body(
        self, conn: _Conn, request: HttpRequest, read: float | None
    ) -> AsyncIterator[bytes]:
        # The caller reads at its own pace, maybe from another task: each wait gets its
        # own watch, and only the read timeout applies (not the deadline).
        dog = self._watchdog
        while True:
            if conn.chunks:
                chunk = conn.take_body()
            else:
                watch = dog.start(None, read)
                dog.reading(watch)
                try:
                    chunk = await conn.read()
                except asyncio.CancelledError as exc:
                    if dog.expired(watch) is None:
                        raise
                    raise self._timeout_error(
                        ErrorCode.READ_TIMEOUT, request, request.timeout or self._timeout, False
                    ) from exc
                except Exception as exc:
                    raise self._translate(exc, request, connecting=False) from exc
                finally:
                    dog.stop(watch)
                if not chunk:
                    return
            yield chunk

    def _closer(self, conn: _Conn) -> Callable[[], Any]:
        async def close() -> None:  # HttpResponse.aclose() calls it at most once
            if conn.done and not conn.chunks and conn.error is None:
                self._release(conn)
            else:
                conn.abandon()  # a partly read body: the connection cannot be reused
            self._in_use -= 1
            self._slots.give()

        return close

    # -- errors -----------------------------------------------------------------------------
    @staticmethod
    def _timeout_error(
        code: ErrorCode, request: HttpRequest, timeout: TimeoutConfig, connecting: bool
    ) -> FlextApiError:
        waiting_for = "the connection" if connecting else "the response"
        return watchdog_error(code, request, timeout.read, waiting_for)

    def _translate(
        self, exc: Exception, request: HttpRequest, *, connecting: bool
    ) -> FlextApiError:
        """Map one OS/parser/asyncio error to the most specific code (the only place)."""
        if isinstance(exc, FlextApiError):
            return exc
        if isinstance(exc, BodyFailed):
            # The caller's own error (a gone client, a failed file) is the cause.
            return body_failed(request, exc.source)
        code: ErrorCode
        detail = str(exc) or type(exc).__name__
        invalid = False
        if isinstance(exc, TimeoutError):
            deadline = request.deadline
            if deadline is not None and self._clock.monotonic() >= deadline - 0.001:
                code = ErrorCode.DEADLINE_EXCEEDED
            else:
                code = ErrorCode.CONNECT_TIMEOUT if connecting else ErrorCode.READ_TIMEOUT
        elif isinstance(exc, httptools.HttpParserError):
            code = ErrorCode.PROTOCOL_ERROR
            detail = f"the upstream's answer is not valid HTTP/1.1 ({detail})"
            invalid = True
        elif isinstance(exc, OSError):
            code = map_os_error(exc, connecting=connecting)
        elif isinstance(exc, ValueError):
            code = ErrorCode.INVALID_REQUEST
        else:
            code = ErrorCode.UNEXPECTED_ERROR
        message = (
            f"{code.value.lower().replace('_', ' ')} on {request.method} {request.host}: {detail}"
        )
        err = transport_error(code, message, request, exc)
        if invalid:
            err.details["reason"] = INVALID_MESSAGE
        return err

    # -- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every connection (and the fallback transport); idempotent."""
        self._closed = True
        self._watchdog.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for origin in self._origins.values():
            for conn in list(origin.conns):
                conn.close()
        if self._fallback is not None:
            fallback, self._fallback = self._fallback, None
            await fallback.aclose()

    def stats(self) -> dict[str, Any]:
        """Pool figures: requests in flight and waiting, open and idle connections."""
        return {
            "transport": self.name,
            "max_connections": self._pool.max_connections,
            "in_use": self._in_use,
            "waiting": self._slots.waiting,
            "open": self._open,
            "idle": self._idle_count,
        }

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<H1Transport [Requests: {s['in_use']} active, {s['waiting']} queued | "
            f"Connections: {s['open']} open, {s['idle']} idle, max {s['max_connections']}]>"
        )


class _RawHeaders(Headers):
    """Response headers decoded to ``str`` on first use: a proxy passing the raw pairs
    on (``response.extensions[RAW_HEADERS]``) never pays for the decoding."""

    __slots__ = ("_raw",)
    _raw: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, raw: list[tuple[bytes, bytes]]) -> _RawHeaders:
        self = cls.__new__(cls)
        self._raw = raw
        self._index = None
        return self

    def __getattr__(self, name: str) -> Any:
        # Only an unset slot lands here: ``_items`` until first used.
        if name != "_items":
            raise AttributeError(name)
        items = self._items = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw]
        return items
