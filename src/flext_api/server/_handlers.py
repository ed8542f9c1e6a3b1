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
from starlette.types import Scope

from flext_api._errors import FlextApiError
from flext_api._redact import escape_control

from ._problem import error_headers, problem_response, public_detail, status_for_error

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


def error_response(error: FlextApiError, scope: Scope | None = None) -> Response:
    """The problem response for ``error``; 5xx causes are logged, never sent."""
    status = status_for_error(error)
    if status >= 500 and scope is not None:
        logger = _logger(scope)
        if logger is not None:
            logger.warning(
                "handler failed",
                code=error.code.value,
                error=escape_control(error.message),
                status=status,
            )
    return problem_response(
        status,
        scope=scope,
        type_=f"urn:flext-api:error:{error.code.value.lower().replace('_', '-')}",
        detail=public_detail(error, status),
        headers=error_headers(error, status),
        extensions={"code": error.code.value},
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
