"""``FlextApiMiddleware``: hooks returning ``FlextResult``, added with ``app.add_middleware(M())``.

Starlette builds its middleware stack by calling each entry with the next app; an
instance of this class is such a callable (``instance(app)`` returns the ASGI wrapper),
so the guide's ``app.add_middleware(CustomBusinessMiddleware())`` works as written.

Per request the wrapper

1. calls ``await process_request(request)``; a failed result answers at once with a
   problem+json document (status: ``details["status"]`` when set, else from the error's
   code - ``RATE_LIMITED`` 429, ``AUTH_ERROR`` 401... - and :attr:`failure_status`, 400,
   for a plain ``fail("...")``); a body the hook reads (``await request.json()``) is
   handed to the app as well;
2. runs the app;
3. calls ``await process_response(request, response)`` - only when the subclass defines
   it (decided once, at construction): the body is then buffered so the hook can read
   ``response.content`` and change ``response.headers``; a failed result becomes a 500,
   and so does a response the hook leaves unsendable (a status outside 200-599, content
   that is not bytes, a header name or value HTTP cannot carry - CR, LF, NUL...), which
   the server would otherwise drop mid-answer.
   ``Content-Length`` is set to the length of the content the hook leaves, except on a
   ``HEAD`` answer, which keeps the app's (a GET's length) and sends no body; a 204 or
   304 sends no body either (and a 204 no ``Content-Length``). A file the server sends
   by path (the ``http.response.pathsend`` extension, granian) is read for the hook.
   An event stream (``text/event-stream``) is never buffered - it has no end: the hook
   runs when it starts, sees ``content`` empty (a change to it is not sent), and its
   status and header changes go out before the events.

The class settings (:attr:`FlextApiMiddleware.failure_status`, the limits of
:class:`~flext_api.middleware.SecurityMiddleware`...) are checked when the app builds its
middleware stack (at startup): a value out of range is a :class:`~flext_api.ConfigError`
then, not a broken answer later.

``request`` is a :class:`FlextRequest`: a Starlette request with ``path``, on which
attributes the hooks set (``request.start_time = ...``) land in ``request.state``, so
route handlers read them as ``request.state.start_time``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import anyio
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import ConfigError, ErrorCode
from .._logger import FlextLogger, get_logger
from .._numbers import is_int
from .._result import FlextResult
from .._syntax import BAD_VALUE_RE, TOKEN_RE
from ..server._problem import send_problem, status_for_error

__all__ = ["FlextApiMiddleware", "FlextRequest", "FlextResponse"]

_REQUEST_ATTRS = frozenset(dir(Request))
_EVENT_STREAM = b"text/event-stream"


class FlextRequest(Request):
    """A Starlette request with ``path``; new attributes are stored in ``request.state``."""

    @property
    def path(self) -> str:
        """The URL path (``/orders/1``)."""
        return str(self.scope["path"])

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        self.__dict__["_ready"] = True

    def __setattr__(self, name: str, value: Any) -> None:
        plain = name.startswith("_") or name in _REQUEST_ATTRS or name in self.__dict__
        if plain or not self.__dict__.get("_ready"):
            super().__setattr__(name, value)
        else:
            setattr(self.state, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the request does not have: look in request.state.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self.state, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}") from None


class FlextResponse:
    """The response as ``process_response`` sees it: ``status_code``, ``headers``, ``content``."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: MutableHeaders, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"<FlextResponse [{self.status_code}] {len(self.content)} bytes>"


class FlextApiMiddleware:
    """Base class: override ``process_request`` and/or ``process_response``.

    Subclasses may define ``__init__`` without calling ``super().__init__()``: the base
    keeps its settings in class attributes.
    """

    #: Status of a request rejected by a plain ``FlextResult.fail("...")``.
    failure_status: ClassVar[int] = 400
    #: The logger the hooks use (``self.logger.warning("...", extra={...})``).
    logger: ClassVar[FlextLogger] = get_logger("flext_api.middleware")

    async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Inspect or annotate the request; a failure answers it without running the app."""
        return FlextResult.ok({})

    async def process_response(
        self, request: FlextRequest, response: FlextResponse
    ) -> FlextResult[dict[str, Any]]:
        """Inspect or change the response (headers, content) before it is sent."""
        return FlextResult.ok({})

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """Bind this middleware in front of ``app`` (what Starlette's stack builder calls).

        Raises:
            ConfigError: a class setting is out of range.
        """
        self._check_settings()
        return _Bound(self, app)

    def _check_settings(self) -> None:
        # Run when the stack is built (startup); subclasses with settings extend it.
        status = self.failure_status
        if not is_int(status) or not 400 <= status <= 599:
            raise ConfigError(
                f"{type(self).__name__}.failure_status must be an int in 400..599, got {status!r}"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class _Bound:
    """The ASGI app of one :class:`FlextApiMiddleware` in front of the next app."""

    __slots__ = ("app", "middleware", "sees_responses")

    def __init__(self, middleware: FlextApiMiddleware, app: ASGIApp) -> None:
        self.middleware = middleware
        self.app = app
        # Decided once: buffering a body is only paid for by a hook that reads it.
        self.sees_responses = (
            type(middleware).process_response is not FlextApiMiddleware.process_response
        )

    async def _reject(self, scope: Scope, send: Send, result: FlextResult[Any]) -> None:
        error = result.exception
        assert error is not None
        wanted = error.details.get("status")
        if isinstance(wanted, int) and 400 <= wanted < 600:
            status = wanted
        elif error.code is ErrorCode.UNEXPECTED_ERROR:
            status = self.middleware.failure_status
        else:
            status = status_for_error(error)
        await send_problem(scope, send, status, detail=error.message if status < 500 else None)

    async def _respond(self, request: FlextRequest, response: FlextResponse) -> bool:
        """Run ``process_response``; False (logged) when the answer must be a 500."""
        outcome = await self.middleware.process_response(request, response)
        if outcome.is_failure:
            # The app has answered; a hook that cannot finish the answer is a server error.
            error: object = outcome.error
        else:
            error = _unsendable(response)
            if error is None:
                return True
        self.middleware.logger.error(
            "middleware process_response failed",
            middleware=type(self.middleware).__name__,
            error=error,
        )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        consumed: deque[Message] = deque()

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                consumed.append(message)
            return message

        request = FlextRequest(scope, recording_receive)
        result = await self.middleware.process_request(request)
        if result.is_failure:
            await self._reject(scope, send, result)
            return
        if consumed:
            # The hook read (some of) the body: the app gets those messages again first,
            # or it would wait for a body that already went by.
            async def replaying_receive() -> Message:
                return consumed.popleft() if consumed else await receive()

            app_receive: Receive = replaying_receive
        else:
            app_receive = receive
        if not self.sees_responses:
            await self.app(scope, app_receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []
        streaming = False

        async def capture(message: Message) -> None:
            nonlocal start, streaming
            kind = message["type"]
            if streaming:
                await send(message)
            elif kind == "http.response.start":
                start = message
                if _is_event_stream(message):
                    streaming = True
                    await self._start_stream(scope, send, request, message)
            elif kind == "http.response.body":
                chunks.append(message.get("body", b""))
            elif kind == "http.response.pathsend":
                chunks.append(await anyio.Path(message["path"]).read_bytes())

        try:
            await self.app(scope, app_receive, capture)
        except _StreamRefused:
            return
        if streaming:
            return
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        response = FlextResponse(int(start.get("status", 500)), headers, b"".join(chunks))
        if not await self._respond(request, response):
            await send_problem(scope, send, 500)
            return
        body = bytes(response.content)
        status = response.status_code
        if scope["method"] == "HEAD" or status in (204, 304):
            # No body goes out, and the Content-Length the app set is the one a GET would
            # get (RFC 9110 §9.3.2, §15.4.5): the length of the empty body seen here is
            # not it. A 204 has none at all (§8.6).
            body = b""
            if status == 204 and "content-length" in response.headers:
                del response.headers["content-length"]
        elif "content-length" in response.headers:
            response.headers["content-length"] = str(len(body))
        await send(
            {"type": "http.response.start", "status": status, "headers": response.headers.raw}
        )
        await send({"type": "http.response.body", "body": body})

    async def _start_stream(
        self, scope: Scope, send: Send, request: FlextRequest, start: Message
    ) -> None:
        """Let the hook see an event stream's start, then send it; the events follow."""
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        response = FlextResponse(int(start.get("status", 500)), headers, b"")
        if not await self._respond(request, response):
            await send_problem(scope, send, 500)
            # The stream's own events must not follow the problem document.
            raise _StreamRefused
        await send({**start, "status": response.status_code, "headers": response.headers.raw})


class _StreamRefused(Exception):
    """Ends an event stream whose start the hook refused (the 500 is already sent)."""


def _is_event_stream(start: Message) -> bool:
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower() == _EVENT_STREAM
    return False


def _unsendable(response: FlextResponse) -> str | None:
    """Why the server could not send ``response`` as the hook left it, or None."""
    # Checked at run time: hooks are often untyped (``response.content = "text"``).
    status: object = response.status_code
    if not is_int(status) or not 200 <= status <= 599:
        # RFC 9110 §15: 100-599; a 1xx is not a final answer.
        return f"status_code must be an int in 200..599, got {status!r}"
    content: object = response.content
    if not isinstance(content, bytes | bytearray | memoryview):
        return f"content must be bytes, got {type(content).__name__}"
    headers: object = response.headers
    if not isinstance(headers, MutableHeaders):
        return f"headers must stay a MutableHeaders, got {type(headers).__name__}"
    pairs: list[tuple[object, object]] = list(headers.raw)
    # RFC 9110 §5.1 and §5.5, as flext_api._syntax checks them (a value's octets past
    # ASCII are obs-text, which a server may send): a header past these is refused by
    # the server after the answer has begun, and the client got a dropped connection.
    for name, value in pairs:
        if not isinstance(name, bytes) or not TOKEN_RE.fullmatch(name.decode("latin-1")):
            return f"header name {name!r} cannot be sent"
        if not isinstance(value, bytes) or BAD_VALUE_RE.search(value.decode("latin-1")):
            return f"the value of header {name!r} cannot be sent (CR, LF, NUL...)"
    return None
