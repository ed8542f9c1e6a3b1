"""Serve the operational endpoints (health, readiness, metrics) before the router.

They are exact paths, so one set lookup replaces route matching: user routes do not pay
for three extra routes tried before them on every request (about 6 us each request on
FastAPI 0.165), and probes skip FastAPI's dependency machinery. Each endpoint is a
Starlette ``Route`` put in ``scope["route"]``, so metrics and the access log see its
template like any other route. This layer sits inside the logging, metrics, security and
trusted-host layers (probes are exempt there) and before rate and body limits.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._problem import send_problem

__all__ = ["OperationalRoutesMiddleware"]


class OperationalRoutesMiddleware:
    """Answer requests for the given routes' exact paths; pass the rest on."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[Route]) -> None:
        self.app = app
        routes = list(routes)
        self._routes = {route.path: route for route in routes}
        self._allow = {
            route.path: (b"allow", ", ".join(sorted(route.methods or ())).encode())
            for route in routes
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        if route.methods and scope["method"] not in route.methods:
            # Answered here: Starlette would raise, and the layers above would see a crash.
            await send_problem(scope, send, 405, headers=[self._allow[route.path]])
            return
        await route.handle(scope, receive, send)
