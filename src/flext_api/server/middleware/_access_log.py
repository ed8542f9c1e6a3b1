"""Access log: exactly one structlog record per HTTP request, safe to ship anywhere.

Fields: ``method``, ``path`` (escaped), ``route`` (the matched template or null),
``status``, ``duration_ms`` (to the last body byte), ``request_id``, ``client``,
``user_agent``, ``query`` (sensitive parameters redacted) and, when ``log_headers`` is on,
``headers`` (credentials redacted). ``path`` and ``query`` each keep their first 8,192
characters (:data:`~flext_api._redact.MAX_LOGGED_URL`), then ``...[N more]``; the cut
comes after redaction and escaping. Every attacker-controlled string goes through
:func:`~flext_api._redact.escape_control`, so CR/LF or ANSI escapes in a path, query or
User-Agent cannot forge a second record even with a plain-text renderer.

A request whose handler raised is logged with the status the error middleware answers
(500, or an escaped ``HTTPException``'s own); one cancelled before any response (client
gone) is logged with status null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import Scope

from flext_api._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    escape_control,
    redact_headers,
    redact_query,
    truncate,
)

from .._asgi import REQUEST_ID_KEY
from .._logging import JsonLogger

__all__ = ["AccessLogger"]

_MAX_USER_AGENT = 512


class AccessLogger:
    """Writes the access record of one request (see module docstring)."""

    __slots__ = (
        "_context",
        "_json",
        "_log_headers",
        "_logger",
        "_sensitive_headers",
        "_sensitive_query",
        "_skip",
    )

    def __init__(
        self,
        logger: Any,
        *,
        sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS,
        sensitive_query_params: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS,
        log_headers: bool = False,
        skip_paths: frozenset[str] = frozenset(),
    ) -> None:
        self._logger = logger
        self._sensitive_headers = sensitive_headers
        self._sensitive_query = sensitive_query_params
        self._log_headers = log_headers
        self._skip = skip_paths
        # The default JSON logger is handed the whole record in one dict (its context
        # first, then the fields and the event, as its emit() orders them); others get
        # keywords.
        self._json = logger if isinstance(logger, JsonLogger) else None
        self._context: Mapping[str, Any] = self._json.context if self._json is not None else {}

    def log(self, scope: Scope, status: int | None, seconds: float, route: str | None) -> None:
        """Log the finished request of ``scope`` (nothing for a skipped path).

        ``route`` is the matched route's template (None when no route matched).
        """
        path = scope["path"]
        if path in self._skip:
            return
        user_agent = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value[:_MAX_USER_AGENT]
                break
        agent = user_agent.decode("latin-1")
        client = scope.get("client")
        fields: dict[str, Any] = {
            **self._context,
            "method": scope["method"],
            "path": truncate(path if path.isprintable() else escape_control(path)),
            "route": route,
            "status": status,
            # Whole microseconds, then milliseconds: round(x, 3) costs ten times more.
            "duration_ms": round(seconds * 1e6) / 1000.0,
            "request_id": scope.get(REQUEST_ID_KEY),
            "client": client[0] if client else None,
            "user_agent": agent if agent.isprintable() else escape_control(agent),
        }
        query = scope.get("query_string", b"")
        if query:
            fields["query"] = truncate(redact_query(query, self._sensitive_query))
        if self._log_headers:
            fields["headers"] = redact_headers(scope["headers"], self._sensitive_headers)
        level = "error" if status is not None and status >= 500 else "info"
        if self._json is not None:
            fields["event"] = "request"
            self._json.write(level, fields)
        else:
            getattr(self._logger, level)("request", **fields)
