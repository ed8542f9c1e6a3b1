"""``SecurityMiddleware``: the checks of the FLEXT architecture guide, each overridable.

``process_request`` runs :meth:`~SecurityMiddleware.check_rate_limit`,
:meth:`~SecurityMiddleware.validate_request`, :meth:`~SecurityMiddleware.authenticate_request`
and :meth:`~SecurityMiddleware.authorize_request` in that order; the first failure answers
the request (429 rate limited, 413 too large, 415 content type, 401 unauthenticated...).
The defaults: at most :attr:`max_requests_per_minute` per client IP and endpoint (in this
process), bodies up to :attr:`max_request_size` by ``Content-Length``, JSON/form content
types for POST/PUT/PATCH; authentication and authorization accept every request - the
app factory's auth dependencies (``require_auth``) do that job, override them to add
checks here. A subclass's limits are checked at startup: ``max_requests_per_minute`` an
int >= 1, ``max_request_size`` an int >= 0, ``allowed_content_types`` a tuple of media
types (``("application/json")``, a plain string, would match any part of it), else a
:class:`~flext_api.ConfigError`.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, ClassVar

from .._errors import ConfigError, ErrorCode
from .._numbers import is_int
from .._result import FlextResult
from ._base import FlextApiMiddleware, FlextRequest

__all__ = ["MinuteCounter", "SecurityMiddleware"]

_WINDOW = 60.0


class MinuteCounter:
    """Requests per ``(client_ip, endpoint)`` over the last minute, in this process.

    Memory is bounded: keys idle for a minute are dropped, and past ``max_keys`` live keys
    the least recently used one is forgotten - a client cycling through unique paths
    (``/orders/1``, ``/orders/2``...) or made-up methods cannot grow the table without
    limit. The keys are kept in the order of their last hit, so the idle ones are always
    the oldest: each request drops those at the front, O(1) amortized, with no periodic
    walk over every key.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._clock = clock
        self.max_keys = max_keys
        self._hits: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many ``(client_ip, endpoint)`` keys are tracked now."""
        return len(self._hits)

    def get_count(self, client_ip: str, endpoint: str) -> int:
        """Count this request and return how many this client made to ``endpoint`` in 60 s."""
        now = self._clock()
        table = self._hits
        while table:  # the least recently hit keys first: drop those idle for a minute
            oldest = next(iter(table.values()))
            if now - oldest[-1] < _WINDOW:
                break
            table.popitem(last=False)
        key = (client_ip, endpoint)
        hits = table.get(key)
        if hits is None:
            hits = table[key] = deque()
            while len(table) > self.max_keys:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
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

    def _check_settings(self) -> None:
        super()._check_settings()
        name = type(self).__name__
        limit = self.max_requests_per_minute
        if not is_int(limit) or limit < 1:
            raise ConfigError(f"{name}.max_requests_per_minute must be an int >= 1, got {limit!r}")
        size = self.max_request_size
        if not is_int(size) or size < 0:
            raise ConfigError(f"{name}.max_request_size must be an int >= 0, got {size!r}")
        types: object = self.allowed_content_types
        if not isinstance(types, tuple | list | frozenset | set) or not all(
            isinstance(media, str) for media in types
        ):
            raise ConfigError(
                f"{name}.allowed_content_types must be a tuple of media types, got {types!r}"
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
        if request.method in ("POST", "PUT", "PATCH") and self._has_body(request):
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

    def _has_body(self, request: FlextRequest) -> bool:
        # A chunked body declares no Content-Length: it is a body all the same.
        return self.get_request_size(request) > 0 or "transfer-encoding" in request.headers

    def is_valid_content_type(self, content_type: str) -> bool:
        """True when ``content_type`` (parameters aside) is one of :attr:`allowed_content_types`."""
        media = content_type.split(";", 1)[0].strip().lower()
        return media in self.allowed_content_types
