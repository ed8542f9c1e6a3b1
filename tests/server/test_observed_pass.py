"""The factory's observed pass: six per-exchange concerns in one middleware."""

from __future__ import annotations

import io

import pytest
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from flext_api.server import ServerMetrics, create_fastapi_app, make_json_logger
from flext_api.server.middleware import (
    ErrorMiddleware,
    ObservedRequestMiddleware,
    SlowRequestMiddleware,
)
from flext_api.server.middleware._access_log import AccessLogger
from flext_api.server.middleware._security_headers import SecurityHeaderSet
from flext_api.server.middleware._slow import SlowRequestReporter
from flext_api.testing import FakeClock
from tests.server.helpers import records


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
    """The default stack has exactly one layer for the per-exchange concerns, outermost."""
    app = create_fastapi_app(logger=make_json_logger(io.StringIO()))
    classes: list[object] = [m.cls for m in app.user_middleware]
    assert classes.count(ObservedRequestMiddleware) == 1
    assert classes.index(ObservedRequestMiddleware) == 0


def test_factory_has_no_separate_error_or_slow_layer() -> None:
    """Escaped errors and slow requests are handled by the observed pass itself."""
    app = create_fastapi_app(logger=make_json_logger(io.StringIO()), slow_request_threshold=1.0)
    classes: list[object] = [m.cls for m in app.user_middleware]
    assert ErrorMiddleware not in classes
    assert SlowRequestMiddleware not in classes


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


async def _crash(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def _crash_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("mid-body")


async def _conflict(scope: Scope, receive: Receive, send: Send) -> None:
    raise HTTPException(409, "conflict", headers={"X-Why": "dup"})


def _error_pass(app: object, stream: io.StringIO) -> ObservedRequestMiddleware:
    logger = make_json_logger(stream)
    return ObservedRequestMiddleware(
        app,  # type: ignore[arg-type]
        request_id_header="X-Request-ID",
        access_log=AccessLogger(logger),
        security_headers=SecurityHeaderSet({"X-Frame-Options": "DENY"}),
        error_logger=logger,
    )


async def _call(app: ObservedRequestMiddleware, scope: Scope | None = None) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope if scope is not None else _scope(), _receive, send)
    return sent


async def test_escaped_error_is_a_decorated_500() -> None:
    """With error_logger, a crash is answered 500 with the request ID and security headers."""
    sent = await _call(_error_pass(_crash, io.StringIO()))
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 500
    assert (headers[b"x-request-id"], headers[b"x-frame-options"]) == (b"abc-1", b"DENY")
    assert headers[b"content-type"] == b"application/problem+json"


async def test_escaped_error_is_logged_after_the_access_record() -> None:
    """The access record (status 500) comes first, then the one traceback record."""
    stream = io.StringIO()
    await _call(_error_pass(_crash, stream))
    events = [(record["event"], record.get("status")) for record in records(stream)]
    assert events == [("request", 500), ("unhandled exception", None)]


async def test_escaped_http_exception_keeps_its_status() -> None:
    """An HTTPException escaping the app keeps its status and headers."""
    sent = await _call(_error_pass(_conflict, io.StringIO()))
    headers = dict(sent[0]["headers"])
    assert (sent[0]["status"], headers[b"x-why"]) == (409, b"dup")


async def test_error_after_response_start_is_reraised() -> None:
    """Once the response started, the error is logged and re-raised."""
    stream = io.StringIO()
    with pytest.raises(RuntimeError, match="mid-body"):
        await _call(_error_pass(_crash_after_start, stream))
    [crash] = records(stream, "unhandled exception")
    assert crash["response_started"] is True


async def test_without_error_logger_the_exception_propagates() -> None:
    """A pass without the error concern lets the exception through, after logging it."""
    stream = io.StringIO()
    mw = ObservedRequestMiddleware(_crash, access_log=AccessLogger(make_json_logger(stream)))
    with pytest.raises(RuntimeError, match="boom"):
        await _call(mw)
    assert [record["status"] for record in records(stream, "request")] == [500]


async def test_error_pass_unregisters_its_send() -> None:
    """The registered send is removed from the scope once the exchange is over."""
    scope = _scope()
    await _call(_error_pass(_app, io.StringIO()), scope)
    assert "flext.send" not in scope


async def test_slow_request_uses_the_pass_timing_without_a_clock() -> None:
    """Without an injected clock the pass's own timing decides (threshold 0: always slow)."""
    stream = io.StringIO()
    mw = SlowRequestMiddleware(_app, threshold=0.0, logger=make_json_logger(stream))
    await _call(mw)
    [warning] = records(stream, "slow request")
    assert (warning["route"], warning["threshold_ms"]) == ("<unmatched>", 0.0)
    assert warning["duration_ms"] >= 0.0


def _slow_pass(stream: io.StringIO) -> ObservedRequestMiddleware:
    """A pass with only slow requests on (1 s), over an app that takes 2 s of fake time."""
    clock = FakeClock()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        clock.advance(2.0)
        await _app(scope, receive, send)

    reporter = SlowRequestReporter(1.0, logger=make_json_logger(stream), clock=clock)
    return ObservedRequestMiddleware(slow_app, slow_requests=reporter)


async def test_slow_request_reads_the_injected_clock() -> None:
    """With a clock, the duration is the clock's: here 2 s while the app ran."""
    stream = io.StringIO()
    await _call(_slow_pass(stream))
    [warning] = records(stream, "slow request")
    assert warning["duration_ms"] == 2000.0


async def test_slow_route_seen_before_is_reported_again() -> None:
    """The second slow request to a route (threshold cached) is reported too."""
    stream = io.StringIO()
    mw = _slow_pass(stream)
    await _call(mw)
    await _call(mw)
    assert len(records(stream, "slow request")) == 2


class _KeywordLogger:
    """A structlog-style logger that records each call's level, event and keywords."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    def info(self, event: str, **fields: object) -> None:
        self.calls.append(("info", event, fields))


async def test_access_log_calls_other_loggers_with_keywords() -> None:
    """A logger other than the default JSON one gets the record as keyword arguments."""
    logger = _KeywordLogger()
    await _call(ObservedRequestMiddleware(_app, access_log=AccessLogger(logger)))
    [(level, event, fields)] = logger.calls
    assert (level, event, fields["status"], fields["path"]) == ("info", "request", 200, "/x")


async def _conflict_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise HTTPException(409, "too late")


async def test_http_exception_after_response_start_is_reraised() -> None:
    """An HTTPException after the response started cannot be answered: it propagates."""
    with pytest.raises(HTTPException, match="too late"):
        await _call(_error_pass(_conflict_after_start, io.StringIO()))
