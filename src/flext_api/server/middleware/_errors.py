"""Outermost middleware: no exception ever reaches the client as a traceback.

An exception that escapes the app (a handler bug, a crashing middleware, a lost Redis)
becomes a generic ``500 application/problem+json`` - whatever the ``Accept`` header, with
no traceback, locals or request headers - and is logged once, with its traceback, in
the server log. An ``HTTPException`` that escapes (one raised in a place no exception
handler covers, such as a body-limit signal from a raw ASGI sub-app) keeps its status.

The 500 is sent through the innermost decorating ``send`` registered in the scope
(``flext.send``), so it still carries the request ID, security, CORS and timing headers.
If the response had already started, nothing can be sent any more: the exception is
logged and re-raised so the server aborts the connection instead of ending a truncated
body as if it were complete.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._redact import escape_control

from .._asgi import REQUEST_ID_KEY, SEND_KEY
from .._problem import send_problem

__all__ = ["ErrorMiddleware", "answer_escaped"]

_INTERNAL_DETAIL = "The server could not complete the request."


async def answer_escaped(
    scope: Scope, send: Send, exc: Exception, *, started: bool, logger: Any
) -> None:
    """Answer ``exc``, which escaped the app, as the module docstring says.

    ``send`` is the outermost send of the layer answering (the innermost decorating one
    registered in the scope is preferred); ``started`` tells whether the response had
    already started, in which case ``exc`` is re-raised after logging.
    """
    target = scope.get(SEND_KEY, send)
    if isinstance(exc, HTTPException):
        if started:
            raise exc
        headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        detail: Any = exc.detail
        await send_problem(
            scope, target, exc.status_code,
            detail=detail if isinstance(detail, str) else None, headers=headers,
        )  # fmt: skip
        return
    logger.error(
        "unhandled exception",
        exc_info=exc,
        method=scope.get("method"),
        path=escape_control(scope.get("path", "")),
        request_id=scope.get(REQUEST_ID_KEY),
        response_started=started,
    )
    if started:
        raise exc
    await send_problem(scope, target, 500, detail=_INTERNAL_DETAIL)


class ErrorMiddleware:
    """Turn escaped exceptions into problem+json responses (see module docstring).

    The factory does not stack this class: its observed pass
    (:class:`~._observed.ObservedRequestMiddleware` with ``error_logger``) does the same
    in the same frame. This class is for composing a stack of your own.
    """

    def __init__(self, app: ASGIApp, *, logger: Any) -> None:
        self.app = app
        self._logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        scope[SEND_KEY] = tracking_send
        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - logged or re-raised by answer_escaped
            await answer_escaped(scope, tracking_send, exc, started=started, logger=self._logger)
        finally:
            # The registered send leads back to the server's protocol object, which holds
            # this scope: a reference cycle per request, left to the cyclic GC unless cut.
            scope.pop(SEND_KEY, None)
