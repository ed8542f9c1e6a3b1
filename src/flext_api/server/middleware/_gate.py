"""One pass for the cheap checks before the app: probes, default rate limit, body size,
JSON content type.

Four layers of the factory's stack looked at every request only to let nearly all of
them through: :class:`OperationalRoutesMiddleware` (a set lookup), the default rate limit
(when configured), :class:`BodyLimitMiddleware` and :class:`JsonContentTypeMiddleware`
(a scan of the request headers each, and a ``receive`` wrapper each). Stacked, they cost a
``__call__`` frame each per request; fused, one frame, one scan of the headers and at
most one ``receive`` wrapper. The order of the checks is the order the layers had:

1. an operational path (``/health``, ``/ready``, ``/metrics``) is answered at once;
2. the default rate limit (:func:`~._rate_limit.apply_default_limit`) may refuse (it
   also counts WebSocket handshakes, the only check they get here);
3. a ``Content-Length`` above ``max_body_size`` is answered 413 before the app runs;
4. ``receive`` is wrapped when a body can come: the bytes are counted (413 past the
   limit, also for chunked bodies) and, for a body that is not JSON, the first read
   checks whether the route takes JSON (415) - see :mod:`._body_limit` and
   :mod:`._content_type`.

Under HTTP/1.x a request with neither ``Content-Length`` nor ``Transfer-Encoding`` has
no body (RFC 9112 §6.3), so its ``receive`` is not wrapped; HTTP/2 can stream a body
without a length, so there it always is. Each concern is optional; the single-purpose
classes are this pass with one concern on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from limits import RateLimitItem
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._problem import send_problem
from .._ratelimit import RateLimitService
from .._ws_auth import close_at_expiry
from ._body_limit import BODY_LIMIT_DETAIL, BodyTooLargeError
from ._content_type import UnsupportedMediaTypeError, _is_json_route, is_json_content_type
from ._rate_limit import apply_default_limit, websocket_within_limit

__all__ = [
    "BodyLimitMiddleware",
    "JsonContentTypeMiddleware",
    "OperationalRoutesMiddleware",
    "RateLimitMiddleware",
    "RequestGateMiddleware",
]

_HTTP1 = frozenset({"1.0", "1.1"})


def _exceeds(length: bytes, limit: int) -> bool:
    """True when the ``Content-Length`` value ``length`` announces more than ``limit`` bytes.

    Compared as digit strings first: ``int()`` refuses values of thousands of digits, and
    an ASGI server need not have refused them before the app sees the header.
    """
    if not length.isdigit():
        return False  # not a length; the server or the body count deals with it
    digits = length.lstrip(b"0")
    bound = b"%d" % limit
    return len(digits) > len(bound) or (len(digits) == len(bound) and digits > bound)


class RequestGateMiddleware:
    """Operational routes, default rate limit, body limit and JSON content type, fused."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[Route] = (),
        rate_limiter: RateLimitService | None = None,
        default_limit: RateLimitItem | None = None,
        rate_limit_exempt_paths: frozenset[str] = frozenset(),
        rate_limit_headers: bool = True,
        max_body_size: int | None = None,
        enforce_json: bool = False,
    ) -> None:
        self.app = app
        routes = list(routes)
        self._routes = {route.path: route for route in routes}
        self._allow = {
            route.path: (b"allow", ", ".join(sorted(route.methods or ())).encode())
            for route in routes
        }
        self._limiter = rate_limiter if default_limit is not None else None
        self._default_limit = default_limit
        self._exempt = rate_limit_exempt_paths
        self._limit_headers = rate_limit_headers
        self._max_body = max_body_size
        self._json = enforce_json
        self._json_routes: dict[int, bool] = {}  # id(route) -> is JSON route; routes live forever

    def _route_wants_json(self, route: Any) -> bool:
        key = id(route)
        known = self._json_routes.get(key)
        if known is None:
            known = self._json_routes[key] = _is_json_route(route)
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                if self._limiter is not None and scope["path"] not in self._exempt:
                    assert self._default_limit is not None  # set together with the limiter
                    if not await websocket_within_limit(
                        self._limiter, self._default_limit, scope, send, headers=self._limit_headers
                    ):
                        return
                # A connection a JWT authenticates closes when the token expires.
                receive, send = close_at_expiry(scope, receive, send)
            await self.app(scope, receive, send)
            return
        route = self._routes.get(scope["path"]) if self._routes else None
        if route is not None:
            await self._operational(route, scope, receive, send)
            return
        if self._limiter is not None and scope["path"] not in self._exempt:
            assert self._default_limit is not None  # set together with the limiter
            limited = await apply_default_limit(
                self._limiter, self._default_limit, scope, send, headers=self._limit_headers
            )
            if limited is None:
                return
            send = limited
        limit = self._max_body
        if limit is None and not self._json:
            await self.app(scope, receive, send)
            return
        # One C-level pass over the headers; the first of repeated names wins.
        headers = dict(reversed(scope["headers"]))
        length = headers.get(b"content-length")
        if length is not None and limit is not None and _exceeds(length, limit):
            await send_problem(scope, send, 413, detail=BODY_LIMIT_DETAIL.format(limit=limit))
            return
        # A body is announced by a Content-Length other than 0 or by Transfer-Encoding.
        declared = (length is not None and length != b"0") or b"transfer-encoding" in headers
        content_type = headers.get(b"content-type")
        check_json = (
            self._json
            and declared
            and (content_type is None or not is_json_content_type(content_type))
        )
        count = limit is not None and (declared or scope.get("http_version") not in _HTTP1)
        if not (count or check_json):
            await self.app(scope, receive, send)
            return
        guarded = self._guarded_receive(scope, receive, limit if count else None, check_json)
        await self.app(scope, guarded, send)

    def _guarded_receive(
        self, scope: Scope, receive: Receive, limit: int | None, check_json: bool
    ) -> Receive:
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received, check_json
            if check_json:
                check_json = False
                if self._route_wants_json(scope.get("route")):
                    raise UnsupportedMediaTypeError
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        return guarded_receive

    async def _operational(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = route
        if route.methods and scope["method"] not in route.methods:
            # Answered here: Starlette would raise, and the layers above would see a crash.
            await send_problem(scope, send, 405, headers=[self._allow[route.path]])
            return
        await route.handle(scope, receive, send)


class OperationalRoutesMiddleware(RequestGateMiddleware):
    """Answer requests for the given routes' exact paths before the router.

    They are exact paths, so one dict lookup replaces route matching: user routes do not
    pay for three extra routes tried before them on every request, and probes skip
    FastAPI's dependency machinery. Each endpoint is a Starlette ``Route`` put in
    ``scope["route"]``, so metrics and the access log see its template like any other
    route. The request gate with only this check on.
    """

    def __init__(self, app: ASGIApp, *, routes: Iterable[Route]) -> None:
        super().__init__(app, routes=routes)


class RateLimitMiddleware(RequestGateMiddleware):
    """Enforce ``default_limit`` per client and emit its ``RateLimit-*`` headers.

    The request gate with only this check on (see :mod:`._rate_limit`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: RateLimitService,
        default_limit: RateLimitItem,
        exempt_paths: frozenset[str] = frozenset(),
        headers: bool = True,
    ) -> None:
        super().__init__(
            app,
            rate_limiter=service,
            default_limit=default_limit,
            rate_limit_exempt_paths=exempt_paths,
            rate_limit_headers=headers,
        )


class BodyLimitMiddleware(RequestGateMiddleware):
    """Reject request bodies larger than ``max_body_size`` bytes with 413.

    The request gate with only this check on (see :mod:`._body_limit`).
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        super().__init__(app, max_body_size=max_body_size)


class JsonContentTypeMiddleware(RequestGateMiddleware):
    """Answer 415 when a JSON route receives a non-JSON body (see :mod:`._content_type`).

    The request gate with only this check on.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, enforce_json=True)
