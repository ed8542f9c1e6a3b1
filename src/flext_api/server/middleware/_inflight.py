"""Count in-flight HTTP requests so shutdown can wait for them (graceful drain)."""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["InFlightMiddleware", "InFlightTracker"]


class InFlightTracker(Protocol):
    """What the middleware reports to (the server state implements it)."""

    def request_started(self) -> None:
        """A request entered the stack."""

    def request_finished(self) -> None:
        """A request left the stack (finished, failed or cancelled)."""


class InFlightMiddleware:
    """Report every HTTP request's start and end to ``tracker``."""

    def __init__(self, app: ASGIApp, *, tracker: InFlightTracker) -> None:
        self.app = app
        self._tracker = tracker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracker = self._tracker
        tracker.request_started()
        try:
            await self.app(scope, receive, send)
        finally:
            tracker.request_finished()
