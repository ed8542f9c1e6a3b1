"""Exception handlers that turn every handled error into problem+json (RFC 9457).

Registered by the factory for Starlette/FastAPI ``HTTPException`` (404, 405, auth 401/403,
413/415/429 raised from dependencies...), ``RequestValidationError`` (422, with the field
errors in an ``errors`` extension member - without the offending input, which may be a
password) and :class:`~flext_api.FlextApiError` (mapped by :func:`status_for_error`).
Unhandled exceptions never reach these: the outermost error middleware answers them.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flext_api._context import get_request_id
from flext_api._errors import FlextApiError
from flext_api._redact import escape_control

from ._asgi import REQUEST_ID_KEY
from ._problem import (
    PROBLEM_JSON,
    error_headers,
    problem_body,
    problem_response,
    public_detail,
    status_for_error,
)

__all__ = [
    "error_response",
    "flext_error_handler",
    "http_exception_handler",
    "validation_exception_handler",
]


def _logger(scope: Scope) -> Any:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "flext", None)
    return getattr(state, "logger", None)


def _log_cause(error: FlextApiError, status: int, scope: Scope) -> None:
    logger = _logger(scope)
    if logger is not None:
        logger.warning(
            "handler failed",
            code=error.code.value,
            error=escape_control(error.message),
            status=status,
        )


def _error_body(error: FlextApiError, status: int, scope: Scope | None) -> bytes:
    return problem_body(
        status,
        type_=f"urn:flext-api:error:{error.code.value.lower().replace('_', '-')}",
        detail=public_detail(error, status),
        instance=scope.get("path") if scope is not None else None,
        request_id=scope.get(REQUEST_ID_KEY) if scope is not None else get_request_id(),
        extensions={"code": error.code.value},
    )


class _UnboundErrorResponse(Response):
    """The problem response of an error made without its request (``result_response(r)``).

    Built with the request ID of the current request context; when it is sent, the scope
    it is sent for completes it as if it had been given: ``instance``, the scope's request
    ID, and a 5xx cause logged in that app's log.
    """

    def __init__(self, error: FlextApiError, status: int) -> None:
        self.error = error
        super().__init__(
            _error_body(error, status, None),
            status_code=status,
            headers=error_headers(error, status),
            media_type=PROBLEM_JSON,
        )
        self._status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._status >= 500:
            _log_cause(self.error, self._status, scope)
        self.body = _error_body(self.error, self._status, scope)
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def error_response(error: FlextApiError, scope: Scope | None = None) -> Response:
    """The problem response for ``error``; 5xx causes are logged, never sent.

    Without ``scope`` the response is completed by the request it is sent for (its path,
    its request ID, the cause logged in its app's log).
    """
    status = status_for_error(error)
    if scope is None:
        return _UnboundErrorResponse(error, status)
    if status >= 500:
        _log_cause(error, status, scope)
    return Response(
        _error_body(error, status, scope),
        status_code=status,
        headers=error_headers(error, status),
        media_type=PROBLEM_JSON,
    )


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """``HTTPException`` -> problem; a non-string ``detail`` goes to ``errors``."""
    assert isinstance(exc, HTTPException)
    raw: Any = exc.detail  # FastAPI's HTTPException allows any JSON-able detail
    if isinstance(raw, str):
        detail: str | None = raw
        extensions = None
    else:
        detail = None
        extensions = {"errors": jsonable_encoder(raw)}
    return problem_response(
        exc.status_code,
        scope=request.scope,
        detail=detail,
        headers=exc.headers,
        extensions=extensions,
    )


async def validation_exception_handler(request: Request, exc: Exception) -> Response:
    """422 problem whose ``errors`` member lists ``loc``, ``msg`` and ``type`` per field."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
        for error in exc.errors()
    ]
    return problem_response(
        422,
        scope=request.scope,
        detail="The request is not valid.",
        extensions={"errors": jsonable_encoder(errors)},
    )


async def flext_error_handler(request: Request, exc: Exception) -> Response:
    """A :class:`FlextApiError` raised by a handler (or a failed result unwrapped)."""
    assert isinstance(exc, FlextApiError)
    return error_response(exc, request.scope)
