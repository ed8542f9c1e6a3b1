"""Request body limit (default 10 MiB): 413 before the handler, also for chunked bodies.

Two checks, as Litestar does (research/server.md §2.3): a ``Content-Length`` above the
limit is answered with 413 at once, before the app runs or a byte of body is read; and
the bytes actually received are counted, so a chunked body (no ``Content-Length``) or a
lying one is stopped as soon as the count passes the limit. The second case raises
:class:`BodyTooLargeError` (an ``HTTPException(413)``) from ``receive``: FastAPI re-raises
it while reading the body, before the endpoint is called, and the exception handler turns
it into the usual problem response.

Starlette >= 1.6 has a ``max_body_size`` of its own (plain-text 413, off by default);
this check exists so the default is on and the answer is problem+json. It runs in the
request gate (:mod:`._gate`); :class:`BodyLimitMiddleware` is that gate with only it on.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

__all__ = ["BODY_LIMIT_DETAIL", "BodyTooLargeError"]

BODY_LIMIT_DETAIL = "The request body is larger than the {limit} bytes this service accepts."


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once the streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, BODY_LIMIT_DETAIL.format(limit=limit))
