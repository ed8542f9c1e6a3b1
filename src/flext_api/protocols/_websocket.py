"""``FlextApiClient.websocket(url)``: a WebSocket that survives drops.

Built on aiohttp's WebSocket client (already a dependency; framing, masking, ping/pong
and close frames are its job) — measured against raw aiohttp and ``websockets`` in
``bench/protocols.py``. What this module adds is the resilience the HTTP client has:

* the opening handshake carries the client's headers and auth, and asks the host's
  circuit breaker first (an open circuit fails fast with ``CIRCUIT_OPEN``);
* a heartbeat (``ping_interval``, ``pong_timeout``) detects a dead peer;
* after a drop it reconnects with the retry policy's backoff and jitter, then runs the
  ``on_reconnect`` hook (resubscribe) before queued messages go out; a hook that raises
  is logged and ends the connection (``PLUGIN_ERROR`` in :attr:`reconnect_error`);
* ``send_*`` go through a bounded queue: a full queue makes the sender wait
  (backpressure), and messages queued while disconnected go out after the reconnect;
* received messages wait in a bounded queue; the reader stops reading the socket while
  it is full, so TCP flow control reaches the server and memory stays bounded;
* JSON messages can be routed to handlers by a type field (:meth:`on`, :meth:`run`);
* every fallible call returns a ``FlextResult``; a closed connection gives
  ``WEBSOCKET_CLOSED`` with its :class:`CloseCode` in ``details["close_code"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

import aiohttp
import orjson
import structlog

from .._config import TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._exactjson import loads as exact_json
from .._models import HttpRequest, HttpResponse
from .._numbers import finite_json, is_int, is_real
from .._result import FlextResult
from ..client._request import is_absolute_url
from ..discovery._stage import SERVICE_SCHEME, split_service_url
from ..transports._websocket import open_websocket
from ._reconnect import Reconnect, is_permanent
from ._ws_types import (
    RECONNECT_CODES,
    CloseCode,
    WebSocketClosed,
    WebSocketMessage,
    WebSocketSettings,
    is_sendable_close_code,
)

if TYPE_CHECKING:
    from ..client._client import FlextApiClient

__all__ = ["WebSocketConnection", "WebSocketOptions"]

_log = structlog.get_logger("flext_api.protocols")

Handler = Callable[[Any], Awaitable[None] | None]
ReconnectHook = Callable[["WebSocketConnection"], Awaitable[None]]
_Outgoing = tuple[str, str | bytes]
_SEND_ERRORS = (aiohttp.ClientError, ConnectionError, RuntimeError)
_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY
_SENT: FlextResult[None] = FlextResult(None)
_new_message = object.__new__
_success = FlextResult._success
_END = frozenset({aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR})
# Seconds a reconnected socket must stay open to count as working without a message.
_PROVEN_AFTER = 30.0


class WebSocketOptions(TypedDict, total=False):
    """The keyword arguments of :class:`WebSocketConnection`, for
    ``client.websocket(url, **options)``.

    Kept equal to ``WebSocketConnection.__init__``'s keyword-only parameters by
    ``tests/unit/client/test_forwarded_options.py``.
    """

    settings: WebSocketSettings | None
    on_reconnect: ReconnectHook | None
    headers: Any


class WebSocketConnection:
    """One logical WebSocket connection (kept across reconnects).

    >>> async with client.websocket("ws://127.0.0.1:8000/ws") as ws:   # doctest: +SKIP
    ...     await ws.send_json({"type": "subscribe", "topic": "prices"})
    ...     message = (await ws.receive()).value

    The opening handshake (reconnects too) uses the client's timeouts: ``connect`` for
    the TCP/TLS connection, ``read`` for the wait for the server's answer to the upgrade
    (``READ_TIMEOUT`` when it never comes).

    ``on_reconnect(ws)`` runs on each new socket after a reconnect, before anything
    queued is sent (resubscribe there). If it raises, the connection's state on the
    server is unknown (half resubscribed), so the connection is not carried on
    silently: the error is logged, the new socket is closed with 1011, ``closed`` says
    ``on_reconnect hook failed: ...``, :attr:`reconnect_error` is a ``PLUGIN_ERROR``
    whose ``__cause__`` is the hook's exception, and ``receive``/``send_*`` return
    ``WEBSOCKET_CLOSED``. Open a new connection to start again.
    """

    def __init__(
        self,
        client: FlextApiClient,
        url: str,
        *,
        settings: WebSocketSettings | None = None,
        on_reconnect: ReconnectHook | None = None,
        headers: Any = None,
    ) -> None:
        self._client = client
        self.url = _ws_url(client.base_url, url)
        if settings is not None and not isinstance(cast(object, settings), WebSocketSettings):
            raise FlextApiError.from_code(
                ErrorCode.CONFIG_ERROR,
                f"settings must be a WebSocketSettings, got {type(settings).__name__}",
            )
        self.settings = settings or WebSocketSettings()
        self._on_reconnect = on_reconnect
        self._headers = headers
        self._reconnect = Reconnect.from_config(client.config.retry, self.settings.max_reconnects)
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue(self.settings.send_queue)
        # Received messages, then the close marker (which stays: every later receive
        # sees it). A deque and two futures rather than an asyncio.Queue: the queue's
        # bookkeeping cost as much per message as aiohttp's own receive.
        self._inbox: deque[WebSocketMessage | WebSocketClosed] = deque()
        self._getters: list[asyncio.Future[None]] = []  # receivers waiting for a message
        self._room: asyncio.Future[None] | None = None  # the reader waiting for room
        self._handlers: dict[str, Handler] = {}
        self._fallback: Handler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._timeout: TimeoutConfig | None = None  # the client's, from the last upgrade
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._writing = False  # a direct write (or the writer's) is in flight
        self._pending = 0  # messages given to the outbox and not yet written
        self._ready = False  # connected, not closing, not resubscribing: sends may go direct
        self._close_request = WebSocketClosed(CloseCode.NORMAL)
        self._ended_event = asyncio.Event()  # set once ``closed`` is
        self.closed: WebSocketClosed | None = None
        """How the connection ended, once it has."""
        self.reconnects = 0
        """Successful reconnects so far."""
        self.reconnect_error: FlextApiError | None = None
        """Why reconnecting stopped: a reconnect refused for good, or the
        ``on_reconnect`` hook's failure (``PLUGIN_ERROR``, ``__cause__`` its exception)."""
        self.max_queued = 0
        """The most messages the send queue has held at once."""

    # -- opening ------------------------------------------------------------------------------
    async def connect(self) -> FlextResult[None]:
        """Open the connection and start the reader and writer; idempotent."""
        if self._reader is not None:
            return FlextResult.ok(None)
        opened = await self._open()
        if opened.is_failure:
            return opened
        self._reader = asyncio.create_task(self._read_guarded(), name=f"ws-read {self.url}")
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-write {self.url}")
        self._ready = True
        return opened

    async def __aenter__(self) -> WebSocketConnection:
        (await self.connect()).unwrap()  # raises the FlextApiError when the connect failed
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _open(self) -> FlextResult[None]:
        client = self._client
        try:
            request = client.build_request("GET", _http_url(self.url), headers=self._headers)
        except FlextApiError as exc:
            return FlextResult.fail(exc)
        # The client's effective timeouts (its ``timeout=``, else the config's).
        timeout = self._timeout = request.timeout
        url = request.url
        registry = client.registry
        if registry is not None and url.startswith(SERVICE_SCHEME):
            # Each connect (a reconnect too) picks an instance, as each HTTP attempt does.
            name, rest = split_service_url(url)
            picked = await registry.get_instance(name)
            if picked.is_failure:
                return FlextResult.fail(picked.exception or picked.error or "no instance")
            url = picked.value.url + rest
        request = HttpRequest(
            "GET", _ws_url(None, url), headers=request.headers, extensions=request.extensions
        )
        authed = await _authenticate(client, request)
        if authed.is_failure:
            return FlextResult.fail(authed.exception or authed.error or "auth failed")
        request = authed.value
        breaker, admit = _admit(client, request)
        if isinstance(admit, FlextApiError):
            return FlextResult.fail(admit)
        clock = client.clock
        start = clock.monotonic()
        cfg = self.settings
        try:
            self._session, self._ws = await open_websocket(
                request,
                protocols=cfg.protocols,
                heartbeat=cfg.ping_interval,
                pong_timeout=cfg.pong_timeout,
                connect_timeout=None if timeout is None else timeout.connect,
                read_timeout=None if timeout is None else timeout.read,
                max_message_size=cfg.max_message_size,
                verify=client.config.verify_ssl,
            )
        except FlextApiError as exc:
            if breaker is not None:
                breaker.on_failure(clock.monotonic(), clock.monotonic() - start, admit)
            return FlextResult.fail(exc)
        if breaker is not None:
            breaker.on_success(clock.monotonic(), clock.monotonic() - start, admit)
        self._connected.set()
        return FlextResult.ok(None)

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server chose, or None."""
        return None if self._ws is None else self._ws.protocol

    @property
    def connect_timeout(self) -> float | None:
        """The client's connect timeout the last upgrade used (its ``timeout=``, else its
        config's); None before the first connect or when it is off."""
        return None if self._timeout is None else self._timeout.connect

    @property
    def is_connected(self) -> bool:
        """True while a socket is open (False between a drop and the reconnect)."""
        return self._connected.is_set()

    # -- sending ------------------------------------------------------------------------------
    async def send_text(self, text: str) -> FlextResult[None]:
        """Queue a text message (waits while the send queue is full)."""
        checked: object = text  # callers without a type checker may pass anything
        if not isinstance(checked, str):
            return _invalid(f"send_text needs a str, got {type(text).__name__}")
        ws = self._ws
        if self._ready and not self._writing and not self._pending and ws is not None:
            # The common case, inlined (two coroutine frames fewer per message).
            self._writing = True
            try:
                await ws.send_str(text)  # encodes before it writes anything
            except _SEND_ERRORS:
                return await self._requeue(("text", text))
            except UnicodeEncodeError as exc:
                return _invalid(f"send_text needs valid Unicode text: {exc}")
            finally:
                self._writing = False
            return _SENT
        try:
            text.encode()  # checked before queueing: the writer task must not meet it
        except UnicodeEncodeError as exc:
            return _invalid(f"send_text needs valid Unicode text: {exc}")
        return await self._send(("text", text))

    async def send_bytes(self, data: bytes) -> FlextResult[None]:
        """Queue a binary message (waits while the send queue is full)."""
        checked: object = data
        if not isinstance(checked, bytes | bytearray | memoryview):
            return _invalid(f"send_bytes needs bytes, got {type(data).__name__}")
        return await self._send(("bytes", bytes(data)))

    async def send_json(self, value: Any) -> FlextResult[None]:
        """Queue ``value`` as a JSON text message."""
        try:
            text = finite_json(value).decode()
        except (TypeError, ValueError) as exc:
            return _invalid(f"value is not JSON-serializable: {exc}")
        return await self._send(("text", text))

    async def _send(self, item: _Outgoing) -> FlextResult[None]:
        if self._ready and not self._writing and not self._pending:
            # Connected, nothing queued, the writer idle: write from this task (handing
            # over to the writer task costs as much as the write itself).
            self._writing = True
            try:
                written = await self._write(item)
            finally:
                self._writing = False
            if written._error is None:
                return _SENT
            return await self._requeue(item, written)
        if self.closed is not None or self._closing:
            return self._closed_result()
        if self._reader is None:
            return _invalid("connect() first (or use `async with`)")
        if asyncio.current_task() is self._reader:
            # The resubscribe hook: straight to the new socket, ahead of the queue.
            return await self._write(item)
        await self._enqueue(item)
        self.max_queued = max(self.max_queued, self._outbox.qsize())
        return _SENT

    async def _requeue(
        self, item: _Outgoing, failed: FlextResult[None] | None = None
    ) -> FlextResult[None]:
        """A direct write failed: the socket died. Queue the message for the reconnect,
        or report the close when the connection is ending."""
        if self._ended() is not None or self._is_closing():
            return failed if failed is not None else self._closed_result()
        await self._enqueue(item)
        return _SENT

    async def _enqueue(self, item: _Outgoing) -> None:
        # Counted before the put: a later send must not write ahead of one waiting for
        # room in a full queue.
        self._pending += 1
        try:
            await self._outbox.put(item)
        except BaseException:
            self._pending -= 1  # cancelled while waiting for room: it was never queued
            raise

    async def _write(self, item: _Outgoing) -> FlextResult[None]:
        ws = self._ws
        if ws is None or ws.closed:
            return self._closed_result()
        kind, data = item
        try:
            if kind == "text":
                await ws.send_str(data)  # type: ignore[arg-type]
            else:
                await ws.send_bytes(data)  # type: ignore[arg-type]
        except _SEND_ERRORS as exc:
            err = FlextApiError.from_code(ErrorCode.PROTOCOL_ERROR, f"send failed: {exc}")
            err.__cause__ = exc
            return FlextResult.fail(err)
        return FlextResult.ok(None)

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            # Holding an item: senders must queue behind it, not write ahead of it.
            self._writing = True
            while True:
                await self._connected.wait()
                if (await self._write(item)).is_success:
                    break
                if self.closed is not None:
                    return
                # The socket died under us: the reader reconnects; send this one then.
                self._ready = False
                self._connected.clear()
            self._writing = False
            self._pending -= 1
            self._outbox.task_done()

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the socket, or until the
        connection has ended (what was still queued then is not sent)."""
        if self.closed is not None:
            return
        joined = asyncio.ensure_future(self._outbox.join())
        ended = asyncio.ensure_future(self._ended_event.wait())
        try:
            await asyncio.wait((joined, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            joined.cancel()
            ended.cancel()

    # -- receiving ----------------------------------------------------------------------------
    async def receive(self, timeout: float | None = None) -> FlextResult[WebSocketMessage]:
        """The next message; ``WEBSOCKET_CLOSED`` once the connection has ended for good,
        ``READ_TIMEOUT`` when ``timeout`` seconds pass with nothing."""
        if timeout is not None and not (is_real(timeout) and timeout >= 0):  # NaN too
            return _invalid(f"timeout must be seconds >= 0 or None, got {timeout!r}")
        inbox = self._inbox
        if inbox:
            item = inbox[0]
            if isinstance(item, WebSocketMessage):
                inbox.popleft()
                if self._room is not None:
                    self._make_room()
                return _success(item)
        return await self._receive_wait(timeout)

    async def _receive_wait(self, timeout: float | None) -> FlextResult[WebSocketMessage]:
        """receive() when no message is waiting: wait for one (or for the end)."""
        if self._reader is None:
            return _invalid("connect() first (or use `async with`)")
        inbox = self._inbox
        while not inbox:
            if self.closed is not None:
                return self._closed_result()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                return FlextResult.fail(
                    f"no WebSocket message within {timeout}s", code=ErrorCode.READ_TIMEOUT
                )
            finally:
                if waiter in self._getters:  # timed out or cancelled: not woken
                    self._getters.remove(waiter)
        item = inbox[0]
        if isinstance(item, WebSocketClosed):
            return self._closed_result()
        inbox.popleft()
        self._make_room()
        return FlextResult(item)

    def _wake_getters(self) -> None:
        """Wake the receivers waiting for a message (something was put in the inbox)."""
        getters, self._getters = self._getters, []
        for waiter in getters:
            if not waiter.done():
                waiter.set_result(None)

    def _make_room(self) -> None:
        """Wake the reader if it waits for room in the inbox."""
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    async def _wait_room(self) -> None:
        """Stop reading the socket while the inbox is full (TCP backpressure)."""
        limit = self.settings.receive_queue
        while len(self._inbox) >= limit and not self._closing:
            room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room = room
            await room

    async def receive_text(self, timeout: float | None = None) -> FlextResult[str]:
        """The next message as text (``DECODE_ERROR`` for bytes that are not UTF-8)."""
        received = await self.receive(timeout)
        if received.is_failure:
            return FlextResult(error=received.exception)
        try:
            return FlextResult.ok(received.value.text)
        except FlextApiError as exc:
            return FlextResult(error=exc)

    async def receive_json(self, timeout: float | None = None) -> FlextResult[Any]:
        """The next message decoded as JSON (``DECODE_ERROR`` when it is not)."""
        received = await self.receive(timeout)
        if received.is_failure:
            return FlextResult(error=received.exception)
        try:
            return FlextResult.ok(received.value.json())
        except FlextApiError as exc:
            return FlextResult(error=exc)

    def __aiter__(self) -> AsyncIterator[WebSocketMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[WebSocketMessage]:
        while True:
            result = await self.receive()
            if result.is_failure:
                return
            yield result.value

    async def _read_guarded(self) -> None:
        """The reader task: a failure in it must end the connection visibly, never leave
        it looking alive with nobody reading (receive would wait forever)."""
        try:
            await self._read_loop()
        except Exception as exc:  # noqa: BLE001 - logged, and ends the connection
            _log.error("websocket.reader_failed", url=self.url, error=repr(exc), exc_info=exc)
            if self.closed is None:
                await self._finish(
                    WebSocketClosed(CloseCode.INTERNAL_ERROR, f"reader failed: {exc!r}"[:200])
                )

    async def _read_loop(self) -> None:
        inbox, limit = self._inbox, self.settings.receive_queue
        while True:
            ws = self._ws
            assert ws is not None
            reason = ""
            # A reconnect counts as failed until its socket delivers a message or stays
            # open a while: one accepted and closed at once must not reset the backoff
            # and max_reconnects, a quiet one that lasted must (else days of quiet,
            # working sockets would use the attempts up one drop at a time).
            unproven = self._reconnect.failures > 0
            opened_at = self._client.clock.monotonic() if unproven else 0.0
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is _TEXT or kind is _BINARY:
                    if unproven:
                        unproven = False
                        self._reconnect.succeeded()
                    # Built without the constructor's call (half the cost, per message).
                    message = _new_message(WebSocketMessage)
                    message.kind = "text" if kind is _TEXT else "bytes"
                    message.data = msg.data
                    inbox.append(message)
                    if self._getters:
                        self._wake_getters()
                    if len(inbox) >= limit:
                        await self._wait_room()  # backpressure: stop reading the socket
                elif kind is aiohttp.WSMsgType.CLOSE:
                    reason = msg.extra if isinstance(msg.extra, str) else ""
                elif kind in _END:
                    break
            if unproven and self._client.clock.monotonic() - opened_at >= _PROVEN_AFTER:
                self._reconnect.succeeded()
            self._ready = False
            self._connected.clear()
            if self._closing:
                await self._finish(self._close_request)
                return
            code = CloseCode.of(ws.close_code)
            if not self.settings.reconnect or code not in RECONNECT_CODES:
                await self._finish(WebSocketClosed(code, reason))
                return
            ended = await self._reconnect_now(code)
            if ended is not None:
                await self._finish(ended)
                return

    async def _reconnect_now(self, code: CloseCode | int) -> WebSocketClosed | None:
        """Reconnect (and resubscribe); None once connected, else how the connection
        ends."""
        await self._drop_socket()
        while not self._reconnect.exhausted and not self._closing:
            await self._reconnect.wait(self._client.clock)  # close() interrupts it
            if self._is_closing():  # close() may have come during the wait
                break
            opened = await self._open()
            if self._is_closing():
                # close() came while the handshake was in flight (it found no socket to
                # close): this one is not wanted, and reading it would keep close() waiting.
                await self._close_new_socket()
                break
            if opened.is_failure:
                err = opened.exception
                if err is not None and is_permanent(err):
                    self.reconnect_error = err
                    return WebSocketClosed(code, f"reconnect refused: {err}")
                continue
            self.reconnects += 1
            hook = self._on_reconnect
            if hook is not None:
                try:
                    await hook(self)
                except Exception as exc:  # noqa: BLE001 - logged, and ends the connection
                    return await self._hook_failed(hook, exc)
            self._ready = True
            return None
        if self._closing:
            return self._close_request
        return WebSocketClosed(code, "reconnects exhausted")

    async def _close_new_socket(self) -> None:
        ws, request = self._ws, self._close_request
        if ws is not None and not ws.closed:
            with contextlib.suppress(*_SEND_ERRORS):
                await ws.close(code=request.code, message=request.reason.encode())

    async def _hook_failed(self, hook: ReconnectHook, exc: Exception) -> WebSocketClosed:
        """``on_reconnect`` raised: log it, close the new socket (1011) and say why."""
        name = getattr(hook, "__qualname__", None) or repr(hook)
        _log.error(
            "websocket.on_reconnect_failed", url=self.url, hook=name, error=repr(exc), exc_info=exc
        )
        err = FlextApiError.from_code(
            ErrorCode.PLUGIN_ERROR,
            f"on_reconnect hook {name} raised {exc!r}; the connection was closed",
            details={"plugin": name, "hook": "on_reconnect"},
        )
        err.__cause__ = exc
        self.reconnect_error = err
        ws = self._ws
        if ws is not None and not ws.closed:
            # The socket goes anyway (_finish drops the session); a failed close changes
            # nothing.
            with contextlib.suppress(*_SEND_ERRORS):
                await ws.close(code=CloseCode.INTERNAL_ERROR, message=b"on_reconnect hook failed")
        return WebSocketClosed(CloseCode.INTERNAL_ERROR, f"on_reconnect hook failed: {exc!r}")

    async def _drop_socket(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _finish(self, closed: WebSocketClosed) -> None:
        self._ready = False
        self._connected.clear()
        self.closed = closed
        self._ended_event.set()
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()  # nothing more can be written; it would wait forever
        await self._drop_socket()
        self._inbox.append(closed)  # behind the messages still waiting
        self._wake_getters()

    # -- routing ------------------------------------------------------------------------------
    def on(self, message_type: str, handler: Handler) -> None:
        """Route JSON messages whose ``type_field`` equals ``message_type`` to ``handler``."""
        self._handlers[message_type] = handler

    def on_other(self, handler: Handler) -> None:
        """Handle every message no :meth:`on` route matched (the raw message is passed)."""
        self._fallback = handler

    async def run(self) -> FlextResult[WebSocketClosed]:
        """Dispatch messages to their handlers until the connection ends; return how.

        Never raises for a handler's failure: the first handler that raises stops the
        loop and comes back as a ``PLUGIN_ERROR`` result (``__cause__`` is its exception,
        ``details["message"]`` the message it was given). The connection stays open, so
        the caller decides: call ``run()`` again to carry on, or close it (leaving
        ``async with`` does).
        """
        async for message in self:
            try:
                await self.dispatch(message)
            except Exception as exc:  # noqa: BLE001 - returned as the run's result
                return _handler_failed(message, exc)
        assert self.closed is not None
        return FlextResult.ok(self.closed)

    async def dispatch(self, message: WebSocketMessage) -> bool:
        """Call the handler for ``message``; False when nothing handled it."""
        handler: Handler | None = None
        payload: Any = message
        if message.kind == "text" and self._handlers:
            try:
                decoded = exact_json(message.data)
            except orjson.JSONDecodeError:
                decoded = None
            if isinstance(decoded, dict):
                handler = self._handlers.get(str(decoded.get(self.settings.type_field)))
                payload = decoded
        if handler is None:
            handler, payload = self._fallback, message
        if handler is None:
            return False
        outcome = handler(payload)
        if inspect.isawaitable(outcome):
            await outcome
        return True

    # -- closing ------------------------------------------------------------------------------
    async def close(
        self, code: int = CloseCode.NORMAL, reason: str = ""
    ) -> FlextResult[WebSocketClosed]:
        """Close with ``code``; idempotent; returns how the connection ended.

        ``code`` must be one an endpoint may send (1000-1003, 1007-1014, 3000-4999) and
        ``reason`` at most 123 bytes of UTF-8; otherwise ``INVALID_REQUEST`` and the
        connection stays open."""
        problem = _close_problem(code, reason)
        if problem is not None:
            return _invalid(problem)
        if self.closed is not None:
            return FlextResult.ok(self.closed)
        self._closing = True
        self._ready = False
        self._close_request = WebSocketClosed(CloseCode.of(code), reason)
        self._reconnect.interrupt()  # a reconnect waiting for its backoff stops now
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close(code=code, message=reason.encode())
        reader, writer = self._reader, self._writer
        if writer is not None:
            writer.cancel()
        if reader is not None:
            # The reader ends once the close handshake is over; wake it if it waits on
            # a full inbox.
            while not reader.done():
                self._inbox.clear()
                self._make_room()
                await asyncio.wait([reader], timeout=0.05)
        if self._ended() is None:
            await self._finish(WebSocketClosed(CloseCode.of(code), reason))
        tasks = [t for t in (reader, writer) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        closed = self._ended()
        assert closed is not None
        return FlextResult.ok(closed)

    def _is_closing(self) -> bool:
        return self._closing

    def _ended(self) -> WebSocketClosed | None:
        # A method, not the attribute: the reader task sets it while close() waits.
        return self.closed

    def _closed_result(self) -> FlextResult[Any]:
        closed = self.closed or WebSocketClosed(CloseCode.NORMAL, "closing")
        err = FlextApiError.from_code(
            ErrorCode.WEBSOCKET_CLOSED,
            f"WebSocket {self.url} closed ({int(closed.code)} {closed.reason})".rstrip(),
            details={"close_code": closed.code, "reason": closed.reason},
        )
        err.__cause__ = self.reconnect_error  # why reconnecting stopped, when it did
        return FlextResult.fail(err)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("open" if self.is_connected else "connecting")
        return (
            f"<WebSocketConnection {self.url} {state} [queued: {self._outbox.qsize()}/"
            f"{self.settings.send_queue}, reconnects: {self.reconnects}]>"
        )


def _ws_url(base_url: str | None, url: str) -> str:
    """``url`` made absolute against the client's base URL, with a ws/wss scheme."""
    if base_url is not None and not is_absolute_url(url):  # "/ws?next=http://x" too
        url = base_url.rstrip("/") + "/" + url.lstrip("/")
    scheme, sep, rest = url.partition("://")
    mapped = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme)
    return f"{mapped}{sep}{rest}"


def _http_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    mapped = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme)
    return f"{mapped}{sep}{rest}"


def _close_problem(code: object, reason: object) -> str | None:
    """Why ``close(code, reason)`` cannot be sent (RFC 6455 §5.5, §7.4), or None."""
    if not is_int(code) or not is_sendable_close_code(code):
        return f"close code must be 1000-1003, 1007-1014 or 3000-4999, got {code!r}"
    if not isinstance(reason, str):
        return f"close reason must be a str, got {type(reason).__name__}"
    try:
        size = len(reason.encode())
    except UnicodeEncodeError as exc:
        return f"close reason must be valid Unicode text: {exc}"
    if size > 123:
        return f"close reason must be at most 123 bytes of UTF-8, got {size}"
    return None


def _handler_failed(message: WebSocketMessage, exc: Exception) -> FlextResult[Any]:
    err = FlextApiError.from_code(
        ErrorCode.PLUGIN_ERROR,
        f"WebSocket message handler raised {exc!r}",
        details={"message": message},
    )
    err.__cause__ = exc
    return FlextResult.fail(err)


def _invalid(message: str) -> FlextResult[Any]:
    return FlextResult.fail(message, code=ErrorCode.INVALID_REQUEST)


async def _authenticate(client: FlextApiClient, request: HttpRequest) -> FlextResult[HttpRequest]:
    """Run the client's auth plugin over the upgrade request, capturing what it sends."""
    auth = getattr(client, "auth", None)
    if auth is None:
        return FlextResult.ok(request)
    from ..client._plugin import build_pipeline

    seen: list[HttpRequest] = []

    async def capture(req: HttpRequest) -> FlextResult[HttpResponse]:
        seen.append(req)
        return FlextResult.ok(HttpResponse(101, request=req))

    result = await build_pipeline([auth], capture)(request)
    if result.is_failure:
        return FlextResult.fail(result.exception or result.error or "auth failed")
    return FlextResult.ok(seen[-1] if seen else request)


def _admit(client: FlextApiClient, request: HttpRequest) -> tuple[Any, Any]:
    """The host's breaker and its verdict; a ``CIRCUIT_OPEN`` error when it refuses."""
    from ..client.plugins import CircuitBreakerPlugin
    from ..resilience import Reject

    for plugin in client.plugins:
        if isinstance(plugin, CircuitBreakerPlugin) and plugin.config.enabled:
            now = client.clock.monotonic()
            breaker = plugin.registry.get(request.host, now)
            verdict = breaker.allow(now)
            if isinstance(verdict, Reject):
                return None, FlextApiError.from_code(
                    ErrorCode.CIRCUIT_OPEN,
                    f"circuit for {request.host} is {verdict.state.value}",
                    request=request,
                    retry_after=verdict.retry_after,
                )
            return breaker, verdict
    return None, None
