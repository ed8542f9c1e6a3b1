"""Every middleware is pure ASGI and passes non-HTTP scopes through untouched."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from limits import parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import RateLimitService, ServerMetrics, make_json_logger
from flext_api.server.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    CorsMiddleware,
    ErrorMiddleware,
    InFlightMiddleware,
    JsonContentTypeMiddleware,
    MetricsMiddleware,
    OperationalRoutesMiddleware,
    RateLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
    TimingMiddleware,
    TrustedHostMiddleware,
)

LOG = make_json_logger(io.StringIO())


class _Tracker:
    in_flight = 0

    def request_started(self) -> None:
        self.in_flight += 1

    def request_finished(self) -> None:
        self.in_flight -= 1


FACTORIES: dict[str, Callable[[ASGIApp], Any]] = {
    "errors": lambda app: ErrorMiddleware(app, logger=LOG),
    "request_id": lambda app: RequestIdMiddleware(app),
    "in_flight": lambda app: InFlightMiddleware(app, tracker=_Tracker()),
    "access_log": lambda app: AccessLogMiddleware(app, logger=LOG),
    "timing": lambda app: TimingMiddleware(app),
    "metrics": lambda app: MetricsMiddleware(app, metrics=ServerMetrics(buckets=(1.0,))),
    "security": lambda app: SecurityHeadersMiddleware(app, headers={"X-Frame-Options": "DENY"}),
    "cors": lambda app: CorsMiddleware(app, allow_origins=["https://a.example"]),
    "trusted_host": lambda app: TrustedHostMiddleware(app, allowed_hosts=["a.example"]),
    "operational": lambda app: OperationalRoutesMiddleware(app, routes=[]),
    "rate_limit": lambda app: RateLimitMiddleware(
        app,
        service=RateLimitService(ServerRateLimitConfig(), logger=LOG),
        default_limit=parse("1/minute"),
    ),
    "body_limit": lambda app: BodyLimitMiddleware(app, max_body_size=1),
    "content_type": lambda app: JsonContentTypeMiddleware(app),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
async def test_non_http_scopes_pass_through(name: str) -> None:
    """A lifespan scope reaches the wrapped app with the same receive and send."""
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await FACTORIES[name](app)(scope, receive, send)
    assert seen == [(scope, receive, send)]


async def test_trusted_host_closes_websocket_for_unknown_host() -> None:
    """A websocket to an unknown host is closed with policy-violation code 1008."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("must not be reached")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "websocket", "path": "/ws", "headers": [(b"host", b"evil.example")]}
    await TrustedHostMiddleware(app, allowed_hosts=["a.example"])(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
