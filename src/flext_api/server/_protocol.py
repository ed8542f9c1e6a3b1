"""uvicorn's HTTP protocols with a request-head timeout (nginx's ``client_header_timeout``).

uvicorn bounds the idle time between requests but not the time a client takes to send
a request head: a client dripping one header line at a time (slowloris) holds a
connection for ever. Here the head must be complete within ``header_timeout`` seconds of
the connection opening, or of the first bytes after a keep-alive pause; otherwise the
client gets a 408 and the connection is closed. A head that arrives whole in one read
arms no timer (no loop timer per request on keep-alive connections).

On httptools, a response head is held until the body's first write, in the same step of
the event loop, so a small answer leaves in one ``send()`` instead of two (uvicorn writes
head and body separately); a head with no body in that step (a stream that has not
produced yet, an SSE stream) is written at the next loop iteration. A ``100 Continue`` is
never held.

On httptools, a response head is also checked and built in one pass: uvicorn runs two
regular expressions per header line and joins the head line by line; here the names and
the values are each checked at once (the same forbidden bytes as uvicorn's) and the head
is joined in one call. A head outside the plain case (upper-case names, a
``Transfer-Encoding`` or ``Connection`` line, several ``Content-Length`` lines, anything
not a list of byte pairs) goes through uvicorn's own code, which keeps its answers and
errors.

On httptools, an app may also answer a request without an ASGI call (``answer_now``:
the gateway's fresh cache hits). Each request whose head is complete, in origin form, on
a connection that stays open, whose answer would go out at once (no response before it
still being written, the transport not paused), is offered to it before the app's task
would start; ``answer_now`` decides which it answers (the gateway: bodiless ``GET``
requests). It answers at once (returns True), declines (False: the app is called as
usual), or answers later: it returns an awaitable, run in a task of its own in place of
the app's, that answers through the same ``respond`` and comes to True, or to False to
have the app called after all (``respond`` returns False once the client is gone or not
reading, so the app's own flow control decides). Requests pipelined behind a later
answer wait for it, as behind a running app. An answer is written in one ``send()`` and
the request is done, the connection's keep-alive and pipelining as after any answer.
If ``answer_now`` or its awaitable raises before answering, the app is called.

An app may also learn that a client left before its answer began: a callable it puts in
the request's scope under :data:`ON_CLIENT_GONE` is called (once, with no arguments, on
the event loop) when the connection is lost before the response started. ASGI tells an
app of a disconnect only through ``receive()``, which an app waiting on something else
(the gateway, on an upstream's answer) does not call; the gateway uses it to give up the
upstream exchange (see :mod:`flext_api.gateway._app`). Nothing is called for an app that
puts nothing there, or once the response has started.

Two parsers: httptools (llhttp, compiled; the default when the ``httptools`` package is
installed, several times faster per request) and h11 (pure Python; always available).
Both refuse every request-smuggling case in ``tests/integration/gateway/test_smuggling.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from types import FunctionType
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "ON_CLIENT_GONE",
    "AnswerNow",
    "HeaderTimeoutH11Protocol",
    "HeldHeadTransport",
    "Respond",
    "httptools_available",
    "plain_head",
    "protocol_with_header_timeout",
]


#: ``respond(status, header_lines, body)``: sends a whole answer; True when sent.
Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], bool]
#: ``answer_now(scope, respond)``: True once it answered ``scope`` through ``respond``,
#: False to decline, or an awaitable of either (an answer given later); see the module doc.
AnswerNow = Callable[[dict[str, Any], Respond], "bool | Awaitable[bool]"]
#: The scope key of a callable the server calls when the client leaves before the
#: response started (see the module doc).
ON_CLIENT_GONE = "flext.on_client_gone"


def _client_gone(cycle: Any) -> None:
    """Call the callable ``cycle``'s app left under :data:`ON_CLIENT_GONE`, if any, when
    its response has not started (its connection was just lost)."""
    if cycle is None or cycle.response_started:
        return
    scope: dict[str, Any] = cycle.scope
    callback = scope.get(ON_CLIENT_GONE)
    if callback is not None:
        scope[ON_CLIENT_GONE] = None
        callback()


class _HeadTooLarge(Exception):  # a signal to the protocol, never seen outside
    """Raised in a parser callback to stop at a head over the bound."""


_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nThe request head is too large.\r\n"
)
_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 33\r\n"
    b"connection: close\r\n\r\nThe request head took too long.\r\n"
)


class _HeadTimer:
    """The head timer shared by both protocols (``loop`` and ``transport`` are theirs)."""

    header_timeout = 10.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _awaiting_head(self) -> bool:
        raise NotImplementedError  # pragma: no cover

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.transport.write(_408)
            self.transport.close()


class HeaderTimeoutH11Protocol(_HeadTimer, H11Protocol):
    """:class:`H11Protocol` that answers 408 when a request head is not complete in time,
    and 431 when it is larger than ``max_head_bytes``.

    h11 bounds only the part of a head still incomplete (``h11_max_incomplete_event_size``,
    answered 400): a head that arrives whole in one read passes whatever its size. So the
    head is measured here before h11 sees it, in the reads that come while a head is
    awaited: the bytes to its blank line, or all of them while it has none yet.
    """

    max_head_bytes = 32768
    # As on httptools: off where the app measures whole heads and answers its own 431.
    bound_parsed_heads = True
    _head_bytes = 0  # bytes of the unfinished head received so far
    _head_tail = b""  # its last 3 bytes (a blank line may span two reads)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        awaiting = self.conn.their_state is h11.IDLE
        if awaiting and self._head_too_large(data):
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(_431)
                self.transport.close()
            return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_bytes, self._head_tail = 0, b""
            self._disarm()  # the head is in
        else:
            if awaiting:  # still no complete head: all of data belongs to it
                self._head_bytes += len(data)
                self._head_tail = (self._head_tail + data)[-3:]
            if self._head_timer is None:
                self._arm()  # a head begun after a keep-alive pause and not yet complete

    def _head_too_large(self, data: bytes) -> bool:
        """The head ``data`` continues is over the bound (its end in ``data`` or not)."""
        tail = self._head_tail
        end = (tail + data).find(b"\r\n\r\n") if self._head_bytes else data.find(b"\r\n\r\n")
        if end < 0:  # the head goes on past this read
            return self._head_bytes + len(data) > self.max_head_bytes
        if self._head_bytes:
            end -= len(tail)
        return self.bound_parsed_heads and self._head_bytes + end + 4 > self.max_head_bytes

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        _client_gone(self.cycle)

    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE


class HeldHeadTransport:
    """The transport of one response: its head waits for the body (see the module doc)."""

    __slots__ = ("_head", "_loop", "_state", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._state = 0  # 0: nothing written, 1: head held, 2: passing through

    def write(self, data: bytes) -> None:
        """Hold the response head; send it with the next write, or at the next iteration."""
        state = self._state
        if state == 2:
            self._transport.write(data)
        elif state == 1:
            head, self._head, self._state = self._head, None, 2
            assert head is not None
            self._transport.writelines((head, data))
        elif data.startswith(b"HTTP/1.1 1"):
            self._transport.write(data)  # an interim answer (100 Continue) goes at once
        else:
            self._head, self._state = data, 1
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write a held head now."""
        if self._state == 1:
            head, self._head, self._state = self._head, None, 2
            assert head is not None
            self._transport.write(head)

    def __getattr__(self, name: str) -> Any:
        self.flush()  # anything else (close, is_closing...) comes after the head
        return getattr(self._transport, name)


# uvicorn's HEADER_RE and HEADER_VALUE_RE, as bytes to delete (bytes.translate).
_NAME_FORBIDDEN = bytes(range(0x20)) + b'\x7f()<>@,;:[]={} \t\\"'
_VALUE_FORBIDDEN = bytes(range(0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"


def plain_head(
    status_line: bytes, headers: list[Any], *, keep_alive: bool, may_chunk: bool
) -> tuple[bytes, int | None] | None:
    """A response head and its ``Content-Length`` (None: none), built in one pass.

    ``status_line`` ends with CRLF; ``may_chunk``: the body may be framed chunked (not a
    ``HEAD``, ``204`` or ``304``). Returns None when ``headers`` is not the plain case
    (see the module doc); uvicorn's code then builds the head and raises what it raises.
    """
    try:
        names = [name for name, _ in headers]
        joined_names = b"".join(names)
        joined_values = b"".join([value for _, value in headers])
    except (TypeError, ValueError):
        return None
    if (
        not names
        or len(joined_names.translate(None, _NAME_FORBIDDEN)) != len(joined_names)
        or len(joined_values.translate(None, _VALUE_FORBIDDEN)) != len(joined_values)
        or not joined_names.islower()
        or b"transfer-encoding" in names
        or b"connection" in names
        or names.count(b"content-length") > 1
    ):
        return None
    length: int | None = None
    if b"content-length" in names:
        try:
            length = int(headers[names.index(b"content-length")][1].decode())
        except ValueError:
            return None
    parts = [status_line, b"\r\n".join([b": ".join(pair) for pair in headers]), b"\r\n"]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    if length is None and may_chunk:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts), length


def httptools_available() -> bool:
    """True when the compiled ``httptools`` parser can be imported."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def _httptools_protocol() -> tuple[type[Any], type[Any]]:
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.httptools_impl import (
        STATUS_LINE,
        HttpToolsProtocol,
        RequestResponseCycle,
    )

    class OnePassCycle(RequestResponseCycle):
        """uvicorn's cycle whose plain response heads are built by :func:`plain_head`."""

        async def send(self, message: Any) -> None:
            if (
                self.response_started
                or self.disconnected
                or self.flow.write_paused
                or self.access_log
                or message["type"] != "http.response.start"
            ):
                return await super().send(message)
            status = message["status"]
            headers = self.default_headers + list(message.get("headers", ()))
            may_chunk = self.scope["method"] != "HEAD" and status not in (204, 304)
            built = plain_head(
                STATUS_LINE[status], headers, keep_alive=self.keep_alive, may_chunk=may_chunk
            )
            if built is None:
                return await super().send(message)
            head, length = built
            self.response_started = True
            self.waiting_for_100_continue = False
            if length is not None:
                self.expected_content_length, self.chunked_encoding = length, False
            elif may_chunk:
                self.chunked_encoding = True
            self.transport.write(head)
            return None

    # uvicorn's own on_headers_complete, run with OnePassCycle as its RequestResponseCycle:
    # the cycle is built as that class from the start (setting a method or __class__ on
    # a built cycle costs more per request than the one pass saves). A uvicorn whose
    # on_headers_complete does not name RequestResponseCycle keeps its own cycle.
    head_complete = HttpToolsProtocol.on_headers_complete
    if "RequestResponseCycle" in head_complete.__code__.co_names:
        head_complete = FunctionType(
            head_complete.__code__,
            {**vars(httptools_impl), "RequestResponseCycle": OnePassCycle},
            head_complete.__name__,
            head_complete.__defaults__,
            head_complete.__closure__,
        )

    class HeaderTimeoutHttpToolsProtocol(_HeadTimer, HttpToolsProtocol):
        """:class:`HttpToolsProtocol` that answers 408 when a request head is late."""

        _head_pending = True  # between requests or inside a head (not a body/response)
        _in_head = False  # from a request's first byte to the end of its head
        _head_bytes = 0  # bytes of that head so far (llhttp itself has no bound)
        _heads_done = False  # a head was completed during the current data_received
        _read = 0  # bytes of the current data_received
        _too_large = False  # a head over the bound stopped the parser
        max_head_bytes = 32768
        # A head that arrives whole is measured here too; off where the app measures it
        # itself and answers with its own 431 (the gateway's problem with its reason).
        bound_parsed_heads = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            in_head = self._in_head
            self._heads_done = False
            self._read = len(data)
            super().data_received(data)
            if self._heads_done:
                # A head came in (a bodiless request may also have ended, which sets
                # _head_pending again): the timer it was under is done.
                self._disarm()
            if self._in_head and self._head_timer is None:
                self._arm()  # a head begun (after a keep-alive pause) and not yet complete
            if in_head and self._in_head:  # all of data belongs to one unfinished head
                self._head_bytes += len(data)
                if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                    self.transport.write(_431)
                    self.transport.close()

        def on_message_begin(self) -> None:
            self._in_head = True
            self._head_bytes = 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            if (
                self.bound_parsed_heads
                and self._head_bytes + self._read > self.max_head_bytes
                and self._oversized()
            ):
                # A head that came in whole within a read or two: not counted above.
                # The exception stops the parser; send_400_response answers 431.
                self._too_large = True
                raise _HeadTooLarge
            self._head_pending = self._in_head = False
            self._heads_done = True
            previous = self.cycle
            head_complete(self)
            cycle: Any = self.cycle
            if cycle is not None and cycle is not previous:  # not an upgrade
                cycle.transport = HeldHeadTransport(self.transport, self.loop)
                url: bytes = self.url
                if url[:1] != b"/" and url != b"*":
                    # An absolute form: its authority is the request's host (RFC 9112
                    # §3.2.2), which uvicorn drops here; h11's scope keeps the whole
                    # target in raw_path, and so does this one (the task has not run).
                    cycle.scope["raw_path"] = url.split(b"?", 1)[0].split(b"#", 1)[0]

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_pending = True

        def _oversized(self) -> bool:
            """The parsed head's size (the target, each line and its CRLF) is too large."""
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            return size > self.max_head_bytes

        def send_400_response(self, msg: str) -> None:
            if not self._too_large:
                super().send_400_response(msg)
            elif not self.transport.is_closing():
                self.transport.write(_431)
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)
            _client_gone(self.cycle)

        def _awaiting_head(self) -> bool:
            cycle: Any = self.cycle  # None before the first request
            return self._head_pending and (cycle is None or cycle.response_complete)

    class AnsweringHttpToolsProtocol(HeaderTimeoutHttpToolsProtocol):
        """:class:`HeaderTimeoutHttpToolsProtocol` that offers requests to ``answer_now``."""

        answer_now: AnswerNow
        _starting = False  # inside on_headers_complete: the app's start is held
        _to_start: tuple[Any, Any] | None = None
        _answering: Any = None  # the cycle offered to answer_now last (at most one waits)

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if self._starting:  # from on_headers_complete, which starts it (or answers)
                self._to_start = (cycle, app)
            else:  # a pipelined request, once the one before it is answered
                super()._start_asgi_task(cycle, app)

        def on_headers_complete(self) -> None:
            # The start is held until the head is all set up (its transport, its target).
            self._starting = True
            try:
                super().on_headers_complete()
            finally:
                self._starting = False
            to_start, self._to_start = self._to_start, None
            if to_start is None:
                return  # an upgrade, or a pipelined request queued behind another
            cycle, app = to_start
            if (
                app is self.app
                and cycle.keep_alive
                and not cycle.access_log
                and not self.flow.write_paused
                and self.url[:1] == b"/"  # not an absolute form: the app resolves those
            ):
                self._answering = cycle
                try:
                    answered = self.answer_now(cycle.scope, self._respond_now)
                    if answered is True:
                        return
                    if answered is not False:  # an answer that comes later
                        self._unset_keepalive_if_required()  # see below
                        self._start_task(self._answer_later(cycle, app, answered))
                        return
                except Exception as exc:  # the app answers instead, if it still can
                    self.logger.error("Exception in answer_now", exc_info=exc)
                    if cycle.response_started:
                        return
            if self.timeout_keep_alive_task is not None:
                # Armed by a request answered at once earlier in this same read: the app's
                # task must not run under it (data_received cancels it, but only at the
                # start of a read).
                self._unset_keepalive_if_required()
            HttpToolsProtocol._start_asgi_task(self, cycle, app)

        def _start_task(self, coro: Any) -> None:
            """Run ``coro`` as uvicorn runs an app's task (tracked for shutdown).

            Not an app handed to uvicorn's ``_start_asgi_task``: its ``run_asgi`` frame
            and checks cost each later answer about 10,000 instructions more (callgrind,
            ``bench/_edge_instructions.py --targets full``).
            """
            if getattr(self.config, "reset_contextvars", False):
                task = self.loop.create_task(coro, context=contextvars.Context())
            else:
                task = self.loop.create_task(coro)
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        async def _answer_later(self, cycle: Any, app: Any, answer: Awaitable[bool]) -> None:
            """Wait for a later answer; call the app when it declines (or raises)."""
            try:
                if await answer:
                    return
            except Exception as exc:
                self.logger.error("Exception in answer_now", exc_info=exc)
                if cycle.response_started:
                    return
            await cycle.run_asgi(app)

        def _respond_now(
            self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
        ) -> bool:
            """Send a whole answer to the request offered to ``answer_now``; False if it
            cannot be (the client is gone or not reading, or the head is not plain)."""
            cycle: Any = self._answering
            if (
                cycle is None
                or cycle.response_started
                or cycle.disconnected
                or self.flow.write_paused
                or self.transport.is_closing()
            ):
                return False
            keep_alive = cycle.keep_alive  # a later answer may meet a shutdown
            built = plain_head(
                STATUS_LINE[status],
                cycle.default_headers + headers,
                keep_alive=keep_alive,
                may_chunk=status not in (204, 304),
            )
            if built is None or built[1] != len(body):
                return False  # uvicorn's own code decides (and words any error)
            cycle.response_started = cycle.response_complete = True
            cycle.waiting_for_100_continue = False
            self._answering = None
            self.transport.write(built[0] + body)
            cycle.message_event.set()
            if not keep_alive:
                self.transport.close()
            cycle.on_response()
            return True

    return HeaderTimeoutHttpToolsProtocol, AnsweringHttpToolsProtocol


def protocol_with_header_timeout(
    seconds: float,
    *,
    parser: str = "h11",
    max_head_bytes: int = 32768,
    bound_parsed_heads: bool = True,
    answer_now: AnswerNow | None = None,
) -> type[Any]:
    """A protocol class whose request heads must arrive within ``seconds``.

    ``parser``: ``"httptools"``, ``"h11"`` or ``"auto"`` (httptools when installed).
    With httptools a head over ``max_head_bytes`` gets a 431: one still incomplete past
    it (plus at most one read), and one parsed whole (its target and lines) unless
    ``bound_parsed_heads`` is False (the app answers those); h11 the same, the head
    measured before h11 parses it. ``answer_now`` (httptools only): see the module doc.
    """
    if parser == "auto":
        parser = "httptools" if httptools_available() else "h11"
    fields: dict[str, Any] = {
        "header_timeout": seconds,
        "max_head_bytes": max_head_bytes,
        "bound_parsed_heads": bound_parsed_heads,
    }
    base: type[Any] = HeaderTimeoutH11Protocol
    if parser == "httptools":
        plain, answering = _httptools_protocol()
        base = plain if answer_now is None else answering
        if answer_now is not None:
            fields["answer_now"] = staticmethod(answer_now)  # a function is not bound
    return type(base.__name__, (base,), fields)
