"""``SecurityMiddleware``: the checks of the FLEXT architecture guide, each overridable.

``process_request`` runs :meth:`~SecurityMiddleware.check_rate_limit`,
:meth:`~SecurityMiddleware.validate_request`, :meth:`~SecurityMiddleware.authenticate_request`
and :meth:`~SecurityMiddleware.authorize_request` in that order; the first failure answers
the request (429 rate limited, 413 too large, 415 content type, 401 unauthenticated...).
The defaults: at most :attr:`max_requests_per_minute` per client IP and endpoint (in this
process), bodies up to :attr:`max_request_size` by ``Content-Length``, JSON/form content
types for POST/PUT/PATCH; authentication and authorization accept every request - the
app factory's auth dependencies (``require_auth``) do that job, override them to add
checks here.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, ClassVar

from .._errors import ErrorCode
from .._result import FlextResult
from ._base import FlextApiMiddleware, FlextRequest

__all__ = ["MinuteCounter", "SecurityMiddleware"]

_WINDOW = 60.0


class MinuteCounter:
    """Requests per ``(client_ip, endpoint)`` over the last minute, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def get_count(self, client_ip: str, endpoint: str) -> int:
        """Count this request and return how many this client made to ``endpoint`` in 60 s."""
        now = self._clock()
        hits = self._hits[(client_ip, endpoint)]
        while hits and now - hits[0] >= _WINDOW:
            hits.popleft()
        hits.append(now)
        return len(hits)


class SecurityMiddleware(FlextApiMiddleware):
    """Rate limit, size and content-type checks, plus authentication/authorization hooks."""

    max_requests_per_minute: ClassVar[int] = 600
    max_request_size: ClassVar[int] = 10 * 1024 * 1024
    allowed_content_types: ClassVar[tuple[str, ...]] = (
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )

    @property
    def rate_limiter(self) -> MinuteCounter:
        """This middleware's per-minute counter (made on first use)."""
        counter = self.__dict__.get("_rate_limiter")
        if counter is None:
            counter = self.__dict__["_rate_limiter"] = MinuteCounter()
        return counter

    async def process_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Run the four checks in order; the first failure answers the request."""
        for check in (
            self.check_rate_limit,
            self.validate_request,
            self.authenticate_request,
            self.authorize_request,
        ):
            result = await check(request)
            if result.is_failure:
                return result
        return FlextResult.ok({})

    async def check_rate_limit(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """More than :attr:`max_requests_per_minute` from one IP to one endpoint: 429."""
        endpoint = f"{request.method} {request.path}"
        count = self.rate_limiter.get_count(self.get_client_ip(request), endpoint)
        if count > self.max_requests_per_minute:
            return FlextResult.fail("Rate limit exceeded", code=ErrorCode.RATE_LIMITED)
        return FlextResult.ok({})

    async def validate_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Too large by ``Content-Length`` (413) or a body of another content type (415)."""
        if self.get_request_size(request) > self.max_request_size:
            return FlextResult.fail(
                "Request too large", code=ErrorCode.INVALID_REQUEST, details={"status": 413}
            )
        if request.method in ("POST", "PUT", "PATCH") and self.get_request_size(request):
            content_type = request.headers.get("Content-Type", "")
            if not self.is_valid_content_type(content_type):
                return FlextResult.fail(
                    "Invalid content type", code=ErrorCode.INVALID_REQUEST, details={"status": 415}
                )
        return FlextResult.ok({})

    async def authenticate_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Accept (override to authenticate here; failures should use ``AUTH_ERROR``)."""
        return FlextResult.ok({})

    async def authorize_request(self, request: FlextRequest) -> FlextResult[dict[str, Any]]:
        """Accept (override to authorize here)."""
        return FlextResult.ok({})

    def get_client_ip(self, request: FlextRequest) -> str:
        """The peer address (put the server's trusted-proxy handling in front for proxies)."""
        return request.client.host if request.client is not None else "unknown"

    def get_request_size(self, request: FlextRequest) -> int:
        """The declared body size (``Content-Length``), 0 when absent or unreadable."""
        try:
            return max(0, int(request.headers.get("Content-Length", "0")))
        except ValueError:
            return 0

    def is_valid_content_type(self, content_type: str) -> bool:
        """True when ``content_type`` (parameters aside) is one of :attr:`allowed_content_types`."""
        media = content_type.split(";", 1)[0].strip().lower()
        return media in self.allowed_content_types
