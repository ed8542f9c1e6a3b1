"""Record the duration of every HTTP request in :class:`~flext_api.server.ServerMetrics`.

The route label is read from the scope *after* the app ran (routing happens inside it),
so it is the template of the matched route, or ``<unmatched>``.
"""

from __future__ import annotations

from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._asgi import UNMATCHED_ROUTE, escaped_status, register_send, route_template
from .._metrics import ServerMetrics, normalize_method

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware:
    """Observe duration, status and route of each HTTP request."""

    def __init__(
        self, app: ASGIApp, *, metrics: ServerMetrics, exclude_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._exclude = exclude_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exclude:
            await self.app(scope, receive, send)
            return
        method = normalize_method(scope["method"])
        status: int | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, register_send(scope, send_with_status))
        except Exception as exc:
            if status is None:
                status = escaped_status(exc)
            raise
        finally:
            route = route_template(scope) or UNMATCHED_ROUTE
            self._metrics.observe(method, route, status, perf_counter() - start)
