"""The factory's observed pass: six per-exchange concerns in one middleware."""

from __future__ import annotations

import io

from starlette.types import Message, Receive, Scope, Send

from flext_api.server import ServerMetrics, create_fastapi_app, make_json_logger
from flext_api.server.middleware import ObservedRequestMiddleware
from flext_api.server.middleware._access_log import AccessLogger
from flext_api.server.middleware._security_headers import SecurityHeaderSet


class _Tracker:
    def __init__(self) -> None:
        self.events: list[str] = []

    def request_started(self) -> None:
        self.events.append("start")

    def request_finished(self) -> None:
        self.events.append("end")


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "query_string": b"",
        "headers": [(b"x-request-id", b"abc-1")],
        "client": ("127.0.0.1", 1),
    }


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_factory_uses_one_observed_pass() -> None:
    """The default stack has exactly one layer for the per-exchange concerns."""
    app = create_fastapi_app(logger=make_json_logger(io.StringIO()))
    classes: list[object] = [m.cls for m in app.user_middleware]
    assert classes.count(ObservedRequestMiddleware) == 1
    assert classes.index(ObservedRequestMiddleware) == 1  # right inside the error layer


async def test_all_concerns_in_one_pass() -> None:
    """Headers come in the stacked order; log, metric and in-flight see the request once."""
    stream = io.StringIO()
    tracker = _Tracker()
    metrics = ServerMetrics(buckets=(1.0,))
    mw = ObservedRequestMiddleware(
        _app,
        request_id_header="X-Request-ID",
        tracker=tracker,
        access_log=AccessLogger(make_json_logger(stream)),
        timing_header="X-Response-Time",
        metrics=metrics,
        security_headers=SecurityHeaderSet({"X-Frame-Options": "DENY"}),
    )
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await mw(_scope(), _receive, send)
    names = [name for name, _ in sent[0]["headers"]]
    assert names == [b"a", b"x-frame-options", b"x-response-time", b"x-request-id"]
    assert sent[0]["headers"][-1] == (b"x-request-id", b"abc-1")
    assert tracker.events == ["start", "end"]
    assert stream.getvalue().count('"request_id":"abc-1"') == 1
    assert b'route="<unmatched>",status="2xx"' in metrics.render()
