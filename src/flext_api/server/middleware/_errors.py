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

__all__ = ["ErrorMiddleware"]

_INTERNAL_DETAIL = "The server could not complete the request."


class ErrorMiddleware:
    """Turn escaped exceptions into problem+json responses (see module docstring)."""

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
        except HTTPException as exc:
            if started:
                raise
            headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            detail: Any = exc.detail
            await send_problem(
                scope, scope.get(SEND_KEY, tracking_send), exc.status_code,
                detail=detail if isinstance(detail, str) else None, headers=headers,
            )  # fmt: skip
        except Exception as exc:
            self._logger.error(
                "unhandled exception",
                exc_info=exc,
                method=scope.get("method"),
                path=escape_control(scope.get("path", "")),
                request_id=scope.get(REQUEST_ID_KEY),
                response_started=started,
            )
            if started:
                raise
            await send_problem(
                scope, scope.get(SEND_KEY, tracking_send), 500, detail=_INTERNAL_DETAIL
            )
        finally:
            # The registered send leads back to the server's protocol object, which holds
            # this scope: a reference cycle per request, left to the cyclic GC unless cut.
            scope.pop(SEND_KEY, None)
