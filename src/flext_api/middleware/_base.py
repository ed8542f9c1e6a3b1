"""``FlextApiMiddleware``: hooks returning ``FlextResult``, added with ``app.add_middleware(M())``.

Starlette builds its middleware stack by calling each entry with the next app; an
instance of this class is such a callable (``instance(app)`` returns the ASGI wrapper),
so the guide's ``app.add_middleware(CustomBusinessMiddleware())`` works as written.

Per request the wrapper

1. calls ``await process_request(request)``; a failed result answers at once with a
   problem+json document (status: ``details["status"]`` when set, else from the error's
   code - ``RATE_LIMITED`` 429, ``AUTH_ERROR`` 401... - and :attr:`failure_status`, 400,
   for a plain ``fail("...")``);
2. runs the app;
3. calls ``await process_response(request, response)`` - only when the subclass defines
   it (decided once, at construction): the body is then buffered so the hook can read
   ``response.content`` and change ``response.headers``; a failed result becomes a 500.
   ``Content-Length`` is set to the length of the content the hook leaves, except on a
   ``HEAD`` answer, which keeps the app's (a GET's length) and sends no body.

``request`` is a :class:`FlextRequest`: a Starlette request with ``path``, on which
attributes the hooks set (``request.start_time = ...``) land in ``request.state``, so
route handlers read them as ``request.state.start_time``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import ErrorCode
from .._logger import FlextLogger, get_logger
from .._result import FlextResult
from ..server._problem import send_problem, status_for_error

__all__ = ["FlextApiMiddleware", "FlextRequest", "FlextResponse"]

_REQUEST_ATTRS = frozenset(dir(Request))


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
        """Bind this middleware in front of ``app`` (what Starlette's stack builder calls)."""
        return _Bound(self, app)

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = FlextRequest(scope, receive)
        result = await self.middleware.process_request(request)
        if result.is_failure:
            await self._reject(scope, send, result)
            return
        if not self.sees_responses:
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        response = FlextResponse(int(start.get("status", 500)), headers, b"".join(chunks))
        outcome = await self.middleware.process_response(request, response)
        if outcome.is_failure:
            # The app has answered; a hook that cannot finish the answer is a server error.
            self.middleware.logger.error(
                "middleware process_response failed",
                middleware=type(self.middleware).__name__,
                error=outcome.error,
            )
            await send_problem(scope, send, 500)
            return
        body = response.content
        if scope["method"] == "HEAD":
            # No body goes out, and the Content-Length the app set is the one a GET would
            # get (RFC 9110 §9.3.2): the length of the empty body seen here is not it.
            body = b""
        elif "content-length" in response.headers:
            response.headers["content-length"] = str(len(body))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.headers.raw,
            }
        )
        await send({"type": "http.response.body", "body": body})
