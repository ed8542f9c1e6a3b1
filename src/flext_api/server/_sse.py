"""``EventStreamResponse``: Server-Sent Events from a factory app.

Why not ``sse-starlette``: the response is ~100 lines over the ASGI interface, and the
factory already owns what sse-starlette adds around it (shutdown drain, headers). What
it must get right:

* **heartbeat**: a comment line (``: ping``) after ``heartbeat`` seconds without an
  event, so proxies and the client's idle timeout see a live stream;
* **disconnect**: a task waits for ``http.disconnect``; when the client leaves, the
  event source is closed (its ``finally`` blocks run) and nothing more is sent;
* **drain**: once the app begins its drain (``app.state.flext.begin_drain()`` from a
  pre-stop hook, ``flext-api serve`` on SIGTERM, or the lifespan's shutdown), or the
  server it runs under is shutting down, the stream ends cleanly after its next event
  or heartbeat: clients reconnect
  elsewhere with ``Last-Event-ID``. uvicorn (and ``flext-api serve``) waits for open
  connections *before* the lifespan's shutdown, so a stream that only watched the drain
  held a SIGTERM for ever; the server's ``should_exit`` is read through the signal
  handler it installed (``Server.handle_exit``), as sse-starlette does, without patching
  the server;
* **no buffering**: every event is its own ASGI body message (none of the factory's
  middlewares collects bodies), and ``X-Accel-Buffering: no`` asks nginx not to either;
  ``Cache-Control: no-store`` keeps caches out.

Events may be :class:`~flext_api.protocols.ServerSentEvent` objects, ``dict`` s with
``data``/``event``/``id``/``retry`` keys, or plain strings (the data). A ``data`` that
is not a string is sent as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flext_api._errors import ErrorCode, FlextApiError
from flext_api._numbers import finite_json, is_int, is_real

__all__ = ["EventStreamResponse", "encode_event"]

_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


def encode_event(event: Any) -> bytes:
    """One event in ``text/event-stream`` form; ``INVALID_REQUEST`` for a newline in
    ``id`` or ``event`` (it would split the field), a ``retry`` that is not a whole
    number of milliseconds >= 0, ``data`` JSON cannot hold, text with a lone surrogate
    (UTF-8 cannot encode it), or an event that is none of a str, a mapping, an object
    with ``data``."""
    if isinstance(event, str):
        fields: Mapping[str, Any] = {"data": event}
    elif isinstance(event, Mapping):
        fields = event
    elif hasattr(event, "data"):
        ident = getattr(event, "id", None)
        fields = {
            "data": event.data,
            "event": getattr(event, "event", None),
            "id": None if ident == "" else ident,  # "" is "no id"; an id of 0 is sent
            "retry": getattr(event, "retry", None),
        }
    else:
        # bytes, numbers, None...: each used to go out as an empty ``data:`` event.
        raise FlextApiError.from_code(
            ErrorCode.INVALID_REQUEST,
            "An SSE event is a str, a mapping or an object with a data attribute, got "
            f"{type(event).__name__}",
        )
    lines: list[str] = []
    for name in ("id", "event"):
        value = fields.get(name)
        if value is None or (name == "event" and value == "message"):
            continue
        text = str(value)
        if "\n" in text or "\r" in text or (name == "id" and "\0" in text):
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST, f"SSE {name} must be one line, got {text!r}"
            )
        lines.append(f"{name}: {text}")
    retry = fields.get("retry")
    if retry is not None:
        # The field is ASCII digits only (the HTML standard); a client ignores "-5" and a
        # float or text would have raised a bare ValueError here.
        if not is_int(retry) or retry < 0:
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST,
                f"SSE retry must be an int of milliseconds >= 0, got {retry!r}",
            )
        lines.append(f"retry: {retry}")
    data = fields.get("data", "")
    if not isinstance(data, str):
        try:
            data = finite_json(data).decode()
        except (TypeError, ValueError) as exc:
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST, f"SSE data is not JSON-serializable: {exc}"
            ) from exc
    lines.extend(
        f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    try:
        return ("\n".join(lines) + "\n\n").encode()
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON input may carry one)
        raise FlextApiError.from_code(
            ErrorCode.INVALID_REQUEST, f"SSE event is not valid Unicode: {exc.reason}"
        ) from exc


class EventStreamResponse(Response):
    """An ASGI response streaming ``events`` as Server-Sent Events.

    >>> @app.get("/events")                                          # doctest: +SKIP
    ... async def events() -> EventStreamResponse:
    ...     async def ticks():
    ...         for n in range(10):
    ...             yield {"id": n, "event": "tick", "data": {"n": n}}
    ...     return EventStreamResponse(ticks(), heartbeat=15)

    Args:
        events: an async iterable of events (see module docstring).
        heartbeat: seconds of silence before a ``: ping`` comment (None: never); a
            value that is not finite seconds > 0 is a ``ConfigError`` here (0 or less
            used to send pings in a busy loop).
        headers: extra response headers; one named like a default (``Cache-Control``,
            ``Content-Type``, ``X-Accel-Buffering``) replaces it.
    """

    def __init__(
        self,
        events: AsyncIterable[Any],
        *,
        heartbeat: float | None = 15.0,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> None:
        checked: object = heartbeat  # callers without a type checker may pass anything
        if checked is not None and not (is_real(checked) and 0 < checked < math.inf):
            raise FlextApiError.from_code(
                ErrorCode.CONFIG_ERROR,
                f"EventStreamResponse: heartbeat must be seconds > 0 or None, got {heartbeat!r}",
            )
        if not hasattr(events, "__aiter__"):
            # Found out only once the response had started, the stream was cut instead.
            raise FlextApiError.from_code(
                ErrorCode.CONFIG_ERROR,
                f"EventStreamResponse: events must be an async iterable, got "
                f"{type(events).__name__}",
            )
        self.events = events
        self.heartbeat = heartbeat
        self.status_code = status_code
        self.background = None
        self.media_type = "text/event-stream"
        self.body = b""
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        # A header given here replaces the default of that name (both were sent).
        given = {name for name, _ in extra}
        self.raw_headers = [h for h in _HEADERS if h[0] not in given] + extra
        self.disconnected = False
        """True once the client has gone away."""
        self._iterator: AsyncIterator[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        state = getattr(getattr(scope.get("app"), "state", None), "flext", None)
        stream = asyncio.create_task(self._stream(send, state))
        watch = asyncio.create_task(self._watch(receive))
        try:
            done, _ = await asyncio.wait({stream, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, watch):
                task.cancel()
            await asyncio.gather(stream, watch, return_exceptions=True)
            await _close(self.events)
            if self._iterator is not None and self._iterator is not self.events:
                # An iterable whose __aiter__ makes a new generator: that generator is
                # what holds the source's ``finally`` blocks.
                await _close(self._iterator)
        failure = stream.exception() if stream in done else None
        if failure is not None:
            raise failure
        if not self.disconnected:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return

    async def _stream(self, send: Send, state: object) -> None:
        iterator = self._iterator = aiter(self.events)
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=self.heartbeat)
                if not done:
                    if _draining(state):
                        return
                    await send(
                        {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}
                    )
                    continue
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                finally:
                    pending = None
                await send(
                    {"type": "http.response.body", "body": encode_event(event), "more_body": True}
                )
                if _draining(state):
                    return
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)


def _draining(state: object) -> bool:
    """True once the app began its drain (``begin_drain()``, shutdown) or its server is
    exiting: the stream then ends cleanly at its next event or heartbeat, and the client
    reconnects (with ``Last-Event-ID``) to an instance that is not going away. A stream
    that never ended held the drain until its timeout."""
    return getattr(state, "draining", False) is True or _server_exiting()


def _server_exiting() -> bool:
    """True when the server whose ``handle_exit`` handles SIGTERM/SIGINT is exiting.

    uvicorn's ``Server`` installs its bound ``handle_exit`` for those signals while it
    serves (from the main thread) and sets ``should_exit`` on the first one; a server
    run another way has no such handler and this is False.
    """
    for signum in _EXIT_SIGNALS:
        handler = signal.getsignal(signum)
        server = getattr(handler, "__self__", None)
        if server is not None and getattr(server, "should_exit", False) is True:
            return True
    return False


async def _close(events: AsyncIterable[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
