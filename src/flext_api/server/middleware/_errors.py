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

A ``BaseException`` that is not an ``Exception`` (a library's own control-flow
exception) is answered the same way - otherwise the server would answer a bare
``text/plain`` 500 without any of the stack's headers, and the log would call it a
client that went away - and then re-raised, so it keeps propagating. Cancellation,
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit`` are not caught: they end the
request (or the process), they are no failure of it (see :func:`passes_through`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._redact import escape_control

from .._asgi import REQUEST_ID_KEY, SEND_KEY
from .._problem import send_problem

__all__ = ["ErrorMiddleware", "answer_escaped", "passes_through"]

_INTERNAL_DETAIL = "The server could not complete the request."
_PASS_THROUGH = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def passes_through(exc: BaseException) -> bool:
    """True when ``exc`` must propagate unanswered: cancellation (asyncio's, or the
    running backend's), ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, or a
    group holding one of them."""
    if isinstance(exc, Exception):
        return False
    kinds = (*_PASS_THROUGH, anyio.get_cancelled_exc_class())
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda e: isinstance(e, kinds)) is not None
    return isinstance(exc, kinds)


async def answer_escaped(
    scope: Scope, send: Send, exc: BaseException, *, started: bool, logger: Any
) -> None:
    """Answer ``exc``, which escaped the app, as the module docstring says.

    ``send`` is the outermost send of the layer answering (the innermost decorating one
    registered in the scope is preferred); ``started`` tells whether the response had
    already started, in which case ``exc`` is re-raised after logging. A ``BaseException``
    that is no ``Exception`` is re-raised after its answer too.
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
    if not isinstance(exc, Exception):
        raise exc


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
        except BaseException as exc:
            if passes_through(exc):
                raise
            await answer_escaped(scope, tracking_send, exc, started=started, logger=self._logger)
        finally:
            # The registered send leads back to the server's protocol object, which holds
            # this scope: a reference cycle per request, left to the cyclic GC unless cut.
            scope.pop(SEND_KEY, None)
