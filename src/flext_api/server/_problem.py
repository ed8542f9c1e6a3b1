"""RFC 9457 problem details: the one shape of every error response the server sends.

``{"type", "title", "status", "detail", "instance", "request_id", ...extensions}`` as
``application/problem+json``. Two entry points share one encoder: :func:`problem_response`
(a Starlette response, for exception handlers) and :func:`send_problem` (raw ASGI, for
middlewares that answer before the app runs).

:func:`status_for_error` maps a :class:`~flext_api.FlextApiError` to the status a caller
of *this* service should see: a failed upstream call is a 502/503/504 here, not a 500.
Details of 5xx errors stay in the log; the response says only what kind of failure it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import Response
from starlette.types import Scope, Send

from flext_api._context import get_request_id
from flext_api._errors import ErrorCode, FlextApiError

from ._asgi import REQUEST_ID_KEY
from ._json import dumps

__all__ = [
    "BODYLESS_STATUSES",
    "PROBLEM_JSON",
    "error_headers",
    "problem_body",
    "problem_response",
    "public_detail",
    "send_problem",
    "status_for_error",
]

PROBLEM_JSON = "application/problem+json"
_PROBLEM_JSON_B = PROBLEM_JSON.encode()
# Statuses whose response has no content (RFC 9110 §15.3.5, §15.3.6, §15.4.5): an
# ``HTTPException(304)`` from a conditional GET is answered with its headers only; a
# problem body there is more data than the protocol allows, and the server drops the
# connection (with the pipelined requests behind it) instead of answering.
BODYLESS_STATUSES = frozenset({204, 205, 304})

_STATUS_FOR_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.AUTH_ERROR: 401,
    # A storage key that is absent, a conditional write that lost: the caller's to know.
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CIRCUIT_OPEN: 503,
    ErrorCode.BULKHEAD_FULL: 503,
    ErrorCode.CANCELLED: 503,
    ErrorCode.CONNECT_TIMEOUT: 504,
    ErrorCode.READ_TIMEOUT: 504,
    ErrorCode.WRITE_TIMEOUT: 504,
    ErrorCode.POOL_TIMEOUT: 504,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.CONNECT_ERROR: 502,
    ErrorCode.DNS_ERROR: 502,
    ErrorCode.TLS_ERROR: 502,
    ErrorCode.PROTOCOL_ERROR: 502,
    ErrorCode.TOO_MANY_REDIRECTS: 502,
    ErrorCode.DECODE_ERROR: 502,
    ErrorCode.RESPONSE_TOO_LARGE: 502,
}

_GENERIC_DETAIL = {
    500: "The server could not complete the request.",
    502: "An upstream service failed to answer properly.",
    503: "The service is temporarily unavailable; try again later.",
    504: "An upstream service did not answer in time.",
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> bytes:
    """The encoded problem document (extensions never override the standard members)."""
    document: dict[str, Any] = dict(extensions) if extensions else {}
    document.update(
        type=type_,
        title=title or _phrase(status),
        status=status,
        detail=detail if detail is not None else _phrase(status),
        instance=instance,
        request_id=request_id,
    )
    return dumps(document)  # a client's lone surrogate in ``detail`` must not crash this


def problem_response(
    status: int,
    *,
    scope: Scope | None = None,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """A problem+json :class:`~starlette.responses.Response`.

    ``scope`` (``request.scope``) fills ``instance`` with the path and ``request_id``;
    without it, ``request_id`` is the current request's (:func:`get_request_id`). A
    status in :data:`BODYLESS_STATUSES` gets ``headers`` and no content.
    """
    if status in BODYLESS_STATUSES:
        return Response(status_code=status, headers=headers)
    body = problem_body(
        status,
        title=title,
        detail=detail,
        type_=type_,
        instance=scope.get("path") if scope is not None else None,
        request_id=scope.get(REQUEST_ID_KEY) if scope is not None else get_request_id(),
        extensions=extensions,
    )
    return Response(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> None:
    """Answer the request with a problem document, straight over ASGI.

    A status in :data:`BODYLESS_STATUSES` is answered with ``headers`` and no content.
    """
    if status in BODYLESS_STATUSES:
        length = [(b"content-length", b"0")] if status == 205 else []
        start = {"type": "http.response.start", "status": status, "headers": [*length, *headers]}
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return
    body = problem_body(
        status,
        title=title,
        detail=detail,
        instance=scope.get("path"),
        request_id=scope.get(REQUEST_ID_KEY),
        extensions=extensions,
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _PROBLEM_JSON_B),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _last_error(error: FlextApiError) -> FlextApiError | None:
    last = error.details.get("last_error")
    if isinstance(last, FlextApiError):
        return last
    cause = error.__cause__
    return cause if isinstance(cause, FlextApiError) else None


def status_for_error(error: FlextApiError) -> int:
    """The HTTP status this service answers with when a handler fails with ``error``.

    ``HTTP_STATUS`` passes an upstream 4xx through and turns an upstream 5xx into 502;
    ``RETRIES_EXHAUSTED`` maps its last attempt's error; unknown codes are 500.
    """
    code = error.code
    if code is ErrorCode.HTTP_STATUS:
        upstream = error.response.status_code if error.response is not None else None
        return upstream if upstream is not None and 400 <= upstream < 500 else 502
    if code is ErrorCode.RETRIES_EXHAUSTED:
        last = _last_error(error)
        return status_for_error(last) if last is not None else 502
    return _STATUS_FOR_CODE.get(code, 500)


def public_detail(error: FlextApiError, status: int) -> str:
    """What the caller may read: the message of a 4xx, a generic sentence for a 5xx.

    Upstream failures carry internal host names and URLs, so they are logged, not sent.
    """
    if error.code is ErrorCode.HTTP_STATUS:
        return f"An upstream service answered {status}." if status < 500 else _GENERIC_DETAIL[502]
    if status >= 500:
        return _GENERIC_DETAIL.get(status, _GENERIC_DETAIL[500])
    return error.message


def error_headers(error: FlextApiError, status: int) -> dict[str, str]:
    """``Retry-After`` (whole seconds, rounded up) for a 429/503 that knows when to retry.

    A ``retry_after`` that is not finite says nothing usable: no header (``math.ceil``
    would raise, and the 429 would become a 500 of the error handler).
    """
    seconds = error.retry_after
    if seconds is not None and status in (429, 503) and math.isfinite(seconds):
        return {"Retry-After": str(max(0, math.ceil(seconds)))}
    return {}
