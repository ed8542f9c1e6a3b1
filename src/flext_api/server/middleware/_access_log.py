"""Access log: exactly one structlog record per HTTP request, safe to ship anywhere.

Fields: ``method``, ``path`` (escaped), ``route`` (the matched template or null),
``status``, ``duration_ms`` (to the last body byte), ``request_id``, ``client``,
``user_agent``, ``query`` (sensitive parameters redacted) and, when ``log_headers`` is on,
``headers`` (credentials redacted). Every attacker-controlled string goes through
:func:`~flext_api._redact.escape_control`, so CR/LF or ANSI escapes in a path, query or
User-Agent cannot forge a second record even with a plain-text renderer.

A request whose handler raised is logged with the status the error middleware answers
(500, or an escaped ``HTTPException``'s own); one cancelled before any response (client
gone) is logged with status null.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    escape_control,
    redact_headers,
    redact_query,
)

from .._asgi import REQUEST_ID_KEY, escaped_status, register_send, route_template

__all__ = ["AccessLogMiddleware"]

_MAX_USER_AGENT = 512


class AccessLogMiddleware:
    """Log one record per HTTP request (see module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: Any,
        sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS,
        sensitive_query_params: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS,
        log_headers: bool = False,
        skip_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self._logger = logger
        self._sensitive_headers = sensitive_headers
        self._sensitive_query = sensitive_query_params
        self._log_headers = log_headers
        self._skip = skip_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._skip:
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status: int | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, register_send(scope, send_with_status))
        except Exception as exc:
            if status is None:
                status = escaped_status(exc)
            raise
        finally:
            self._log(scope, status, perf_counter() - start)

    def _log(self, scope: Scope, status: int | None, seconds: float) -> None:
        user_agent = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value[:_MAX_USER_AGENT]
                break
        client = scope.get("client")
        extra: dict[str, Any] = {}
        query = scope.get("query_string", b"")
        if query:
            extra["query"] = redact_query(query, self._sensitive_query)
        if self._log_headers:
            extra["headers"] = redact_headers(scope["headers"], self._sensitive_headers)
        log = self._logger.error if status is not None and status >= 500 else self._logger.info
        log(
            "request",
            method=scope["method"],
            path=escape_control(scope["path"]),
            route=route_template(scope),
            status=status,
            duration_ms=round(seconds * 1000.0, 3),
            request_id=scope.get(REQUEST_ID_KEY),
            client=client[0] if client else None,
            user_agent=escape_control(user_agent.decode("latin-1")),
            **extra,
        )
