"""LoggingPlugin: one record per attempt and per call, rising severity, nothing secret."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import structlog

from flext_api import (
    BreakerConfig,
    ErrorCode,
    FlextApiError,
    FlextResult,
    HttpRequest,
    HttpResponse,
    RetryConfig,
)
from flext_api._context import request_context
from flext_api.client import CallNext, FlextApiClient
from flext_api.client.auth import ApiKeyAuth, BearerAuth
from flext_api.client.observability import LoggingPlugin
from flext_api.client.plugins import CircuitBreakerPlugin, RetryPlugin
from flext_api.resilience import RateLimitWaited, RetryGaveUp
from flext_api.resilience._events import Emitter
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport
from tests.unit.observability.logcapture import LogCapture

SECRET = "sekrit-Zq8v-0001"
RETRY = RetryConfig(max_retries=2, budget_ratio=None, seed=1)


def _statuses(*codes: int) -> Callable[[HttpRequest], HttpResponse]:
    """A handler answering ``codes`` in turn, then repeating the last one."""
    remaining = list(codes)

    def handler(request: HttpRequest) -> HttpResponse:
        code = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return HttpResponse(
            code, content=b'{"ok": 1}', headers={"Content-Type": "application/json"}
        )

    return handler


def _client(
    handler: Callable[[HttpRequest], Any],
    plugins: Sequence[object] = (),
    *,
    log: LoggingPlugin | None = None,
    auth: object = None,
    clock: FakeClock | None = None,
) -> FlextApiClient:
    clock = clock or FakeClock()
    chain = [log or LoggingPlugin(clock=clock), *plugins]
    return FlextApiClient(
        "http://api.test",
        transport=MockTransport(handler),
        plugins=chain,  # type: ignore[arg-type]
        auth=auth,  # type: ignore[arg-type]
        default_plugins=False,
        clock=clock,
    )


async def test_retried_call_logs_each_attempt_and_one_outcome(json_logs: LogCapture) -> None:
    """Two failed attempts and a success: three attempt records, one call record."""
    clock = FakeClock()
    client = _client(_statuses(503, 502, 200), [RetryPlugin(RETRY, clock=clock)], clock=clock)
    assert (await client.get("/items")).is_success
    attempts = json_logs.events("http.client.attempt")
    assert [(a["attempt"], a["status"], a["level"]) for a in attempts] == [
        (1, 503, "info"),
        (2, 502, "info"),
        (3, 200, "debug"),
    ]
    assert attempts[0]["error_code"] == "HTTP_STATUS"
    (outcome,) = json_logs.events("http.client.request")
    assert outcome["attempts"] == 3
    assert outcome["status"] == 200
    assert outcome["level"] == "info"
    assert outcome["method"] == "GET"
    assert outcome["url"] == "http://api.test/items"
    assert outcome["duration_ms"] >= 0


async def test_retries_are_logged_with_rising_severity(json_logs: LogCapture) -> None:
    """The first retry is info, later ones warning; giving up is a warning too."""
    clock = FakeClock()
    client = _client(_statuses(503), [RetryPlugin(RETRY, clock=clock)], clock=clock)
    result = await client.get("/down")
    assert result.error_code is ErrorCode.RETRIES_EXHAUSTED
    retries = json_logs.events("http.client.retry")
    assert [(r["attempt"], r["level"]) for r in retries] == [(1, "info"), (2, "warning")]
    assert retries[0]["status"] == 503 and retries[0]["delay_s"] >= 0
    (gave_up,) = json_logs.events("http.client.retry_gave_up")
    assert gave_up["level"] == "warning" and gave_up["attempts"] == 3
    (outcome,) = json_logs.events("http.client.request")
    assert (outcome["level"], outcome["error_code"]) == ("error", "RETRIES_EXHAUSTED")


async def test_breaker_transitions_rise_to_error_when_opened(json_logs: LogCapture) -> None:
    """Opened is error, half-open warning, closed info."""
    clock = FakeClock()
    config = BreakerConfig(consecutive_failures=2, half_open_calls=1, open_jitter=0.0)
    healthy = [False]

    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200 if healthy[0] else 503)

    client = _client(handler, [CircuitBreakerPlugin(config, clock=clock)], clock=clock)
    await client.get("/a")
    await client.get("/a")
    assert (await client.get("/a")).error_code is ErrorCode.CIRCUIT_OPEN
    clock.advance(config.open_duration + 1)
    healthy[0] = True
    assert (await client.get("/a")).is_success
    changes = [(e["new"], e["level"]) for e in json_logs.events("http.client.breaker")]
    assert changes == [("open", "error"), ("half_open", "warning"), ("closed", "info")]


@pytest.mark.parametrize(("status", "level"), [(404, "warning"), (500, "error")])
async def test_http_status_outcome_level_depends_on_class(
    json_logs: LogCapture, status: int, level: str
) -> None:
    """A 4xx outcome is a warning (the caller's problem), a 5xx an error."""
    await _client(_statuses(status)).get("/x")
    (outcome,) = json_logs.events("http.client.request")
    assert (outcome["status"], outcome["level"]) == (status, level)


async def test_invalid_request_outcome_is_one_warning_record(json_logs: LogCapture) -> None:
    """INVALID_REQUEST raised inside the pipeline is logged once, on one line."""
    clock = FakeClock()
    client = _client(_statuses(200), [RetryPlugin(RETRY, clock=clock)], clock=clock)
    result = await client.get("/a%0D%0Ab", extensions={"retry": "bogus"})
    assert result.error_code is ErrorCode.INVALID_REQUEST
    lines = json_logs.text.splitlines()
    assert len(lines) == 1
    (outcome,) = json_logs.records
    assert outcome["level"] == "warning"
    assert outcome["error_code"] == "INVALID_REQUEST"
    assert outcome["url"] == "http://api.test/a%0D%0Ab"
    assert outcome["attempts"] == 0


async def test_secrets_are_masked_in_every_record(json_logs: LogCapture) -> None:
    """Auth header, cookie, secret params, custom marked names: masked everywhere."""
    clock = FakeClock()
    log = LoggingPlugin(log_headers=True, log_bodies=True, redact_params=["sig"], clock=clock)
    client = _client(
        lambda r: HttpResponse(503, headers={"Set-Cookie": f"s={SECRET}"}),
        [RetryPlugin(RETRY, clock=clock)],
        log=log,
        auth=ApiKeyAuth(SECRET, header="X-Tenant-Key"),
        clock=clock,
    )
    await client.post(
        "/p",
        params={"access_token": SECRET, "sig": SECRET, "page": 1},
        headers={"Cookie": f"id={SECRET}", "Authorization": f"Bearer {SECRET}"},
        data={"password": SECRET, "user": "bob"},
        idempotency_key=True,
    )
    assert len(json_logs.events("http.client.attempt")) == 3
    assert SECRET not in json_logs.text
    first = json_logs.events("http.client.attempt")[0]
    assert first["request_headers"]["x-tenant-key"] == "[REDACTED]"
    assert first["response_headers"]["set-cookie"] == "[REDACTED]"
    assert first["request_body"] == "password=[REDACTED]&user=bob"
    assert "page=1" in first["url"]


async def test_error_messages_are_scrubbed_of_secret_values(json_logs: LogCapture) -> None:
    """A failure whose message quotes the token has the token masked and CR/LF escaped."""

    async def leaky(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        token = request.headers["authorization"]
        return FlextResult.fail(
            f"upstream said {token}\r\nforged: line", code=ErrorCode.PROTOCOL_ERROR
        )

    log = LoggingPlugin()
    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(_statuses(200)),
        plugins=[log, leaky],
        auth=None,
        headers={"Authorization": f"Bearer {SECRET}"},
        default_plugins=False,
    )
    await client.get("/x")
    (outcome,) = json_logs.records
    assert outcome["error"] == "upstream said [REDACTED]\\x0d\\x0aforged: line"
    assert SECRET not in json_logs.text


async def test_headers_and_bodies_are_off_by_default(json_logs: LogCapture) -> None:
    """Without log_headers/log_bodies, records carry neither."""
    await _client(_statuses(200)).post("/x", json={"a": 1})
    (attempt,) = json_logs.events("http.client.attempt")
    assert not {"request_headers", "response_headers", "request_body", "response_body"} & set(
        attempt
    )


async def test_bodies_are_truncated(json_logs: LogCapture) -> None:
    """log_bodies keeps max_body characters of each body."""
    log = LoggingPlugin(log_bodies=True, max_body=5)
    client = _client(lambda r: HttpResponse(200, content=b"0123456789"), log=log)
    await client.post("/x", content=b"abcdefgh")
    (attempt,) = json_logs.events("http.client.attempt")
    assert attempt["request_body"] == "abcde...[3 more]"
    assert attempt["response_body"] == "01234...[5 more]"


async def test_streams_are_not_read_for_logging(json_logs: LogCapture) -> None:
    """A streamed request or response body is shown as <stream>, never consumed."""

    async def body() -> Any:
        yield b"chunk"

    client = _client(
        lambda r: HttpResponse(200, content=b"payload"), log=LoggingPlugin(log_bodies=True)
    )
    async with client.stream("POST", "/x", content=body()) as response:
        (attempt,) = json_logs.events("http.client.attempt")
        assert attempt["request_body"] == "<stream>"
        assert attempt["response_body"] == "<stream>"
        assert await response.aread() == b"payload"


async def test_cache_answer_is_logged_with_cache_fields(json_logs: LogCapture) -> None:
    """A call answered by a cache stage logs from_cache, cache_status and 0 attempts."""

    async def cache(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        response = HttpResponse(200, request=request)
        response.from_cache, response.cache_status = True, "hit"
        return FlextResult.ok(response)

    await _client(_statuses(200), [cache]).get("/x")
    (outcome,) = json_logs.events("http.client.request")
    assert (outcome["from_cache"], outcome["cache_status"], outcome["attempts"]) == (True, "hit", 0)
    assert json_logs.events("http.client.attempt") == []


async def test_cancelled_call_is_logged_and_cancellation_propagates(json_logs: LogCapture) -> None:
    """Cancelling a call logs CANCELLED at info and re-raises."""
    started = asyncio.Event()

    async def hang(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(_client(hang).get("/slow"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (outcome,) = json_logs.events("http.client.request")
    assert (outcome["error_code"], outcome["level"], outcome["status"]) == (
        "CANCELLED",
        "info",
        None,
    )


async def test_request_id_of_the_server_request_is_logged(json_logs: LogCapture) -> None:
    """Inside a server request, records carry its request ID (escaped)."""
    with request_context("rid-1\r\n"):
        await _client(_statuses(200)).get("/x")
    # The client refuses to send such an ID (and says so); the plugin's records name it.
    dropped = json_logs.events("request_id.invalid_value_dropped")
    records = [r for r in json_logs.records if r not in dropped]
    assert len(dropped) == 1
    assert {r["request_id"] for r in records} == {"rid-1\\x0d\\x0a"}


async def test_other_resilience_events_are_debug_records(json_logs: LogCapture) -> None:
    """Limiter waits and other events of the call are logged at debug, escaped."""
    emitter = Emitter()

    async def limiter(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        emitter.emit(RateLimitWaited("api.test\n", 0.25))
        emitter.emit(RetryGaveUp("api.test", "GET", 1, "budget", None))
        return await call_next(request)

    await _client(_statuses(200), [limiter]).get("/x")
    (event,) = json_logs.events("http.client.resilience")
    assert event["resilience_event"] == "RateLimitWaited"
    assert (event["key"], event["waited"], event["level"]) == ("api.test\\x0a", 0.25, "debug")
    (gave_up,) = json_logs.events("http.client.retry_gave_up")
    assert gave_up["error_code"] is None


async def test_events_outside_the_call_are_not_logged(json_logs: LogCapture) -> None:
    """An event emitted when no call of this plugin is in progress is not logged."""
    LoggingPlugin()
    Emitter().emit(RateLimitWaited("api.test", 1.0))
    assert json_logs.records == []


async def test_attempt_stage_alone_numbers_attempts_from_one() -> None:
    """Used without its outer stage, the attempt stage still logs attempt 1."""
    with structlog.testing.capture_logs() as logs:
        stage = LoggingPlugin().attempt_stage()

        async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
            return FlextResult.ok(HttpResponse(200))

        await stage(HttpRequest("GET", "http://h/"), endpoint)
    assert [(e["event"], e["attempt"]) for e in logs] == [("http.client.attempt", 1)]


async def test_records_hold_no_raw_control_characters_with_any_renderer() -> None:
    """Every string value is escaped before rendering, so key=value logs stay one line."""
    with structlog.testing.capture_logs() as logs:
        client = _client(
            _statuses(500),
            log=LoggingPlugin(log_headers=True, log_bodies=True),
        )
        await client.post("/a%0A?q=%0D", content=b"line1\r\nline2", headers={"X-A": "v\tw"})

    def strings(value: object) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        return [value] if isinstance(value, str) else []

    values = [s for record in logs for s in strings(record)]
    assert values and all(s.isprintable() for s in values)


async def test_injected_logger_is_used() -> None:
    """A logger passed in receives the records."""
    calls: list[tuple[str, str]] = []

    class Recorder:
        def __getattr__(self, level: str) -> Any:
            return lambda event, **kw: calls.append((level, event))

    await _client(_statuses(200), log=LoggingPlugin(Recorder())).get("/x")
    assert calls == [("debug", "http.client.attempt"), ("info", "http.client.request")]


async def test_bearer_plugin_secret_absent_from_failed_call_logs(json_logs: LogCapture) -> None:
    """A transport failure with bearer auth: no token in any record."""

    def refused(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError(f"refused {request.headers['authorization']}")

    await _client(refused, auth=BearerAuth(SECRET), log=LoggingPlugin(log_headers=True)).get("/x")
    assert json_logs.events("http.client.request")[0]["error_code"] == "CONNECT_ERROR"
    assert SECRET not in json_logs.text


def test_negative_max_body_is_refused() -> None:
    """max_body below zero is a programmer error."""
    with pytest.raises(ValueError, match="max_body"):
        LoggingPlugin(max_body=-1)


def test_repr_shows_settings() -> None:
    """repr shows what is logged."""
    assert repr(LoggingPlugin(log_bodies=True)) == (
        "<LoggingPlugin headers=False bodies=True max_body=1024>"
    )


def test_describe_lists_attempt_stage() -> None:
    """The client shows the logging attempt stage below auth."""
    client = _client(_statuses(200), auth=BearerAuth("t"))
    assert client.describe()[:4] == ["logging", "bearer_auth", "logging[attempt]", "redirects"]


async def test_plugin_error_is_logged_once_as_error(json_logs: LogCapture) -> None:
    """A plugin that raises is a PLUGIN_ERROR outcome, logged at error."""

    async def broken(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        raise FlextApiError.from_code(ErrorCode.PLUGIN_ERROR, "bug")

    await _client(_statuses(200), [broken]).get("/x")
    (outcome,) = json_logs.records
    assert (outcome["error_code"], outcome["level"]) == ("PLUGIN_ERROR", "error")


async def test_bodies_of_a_call_without_response(json_logs: LogCapture) -> None:
    """log_bodies with a transport failure logs the request body only."""

    def refused(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError("no")

    await _client(refused, log=LoggingPlugin(log_bodies=True)).post("/x", content=b"hello")
    (attempt,) = json_logs.events("http.client.attempt")
    assert attempt["request_body"] == "hello"
    assert "response_body" not in attempt


async def test_marked_secret_in_an_error_message_is_scrubbed_from_the_outcome(
    json_logs: LogCapture,
) -> None:
    """A custom-header API key quoted by a transport error is masked in every record."""

    def refused(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError(f"refused key {request.headers['x-tenant-key']}")

    auth = ApiKeyAuth(SECRET, header="X-Tenant-Key")
    await _client(refused, auth=auth).get("/x")
    assert len(json_logs.records) == 2
    assert SECRET not in json_logs.text
    assert "refused key [REDACTED]" in json_logs.events("http.client.request")[0]["error"]


async def test_a_plugin_that_raises_still_logs_the_call(json_logs: LogCapture) -> None:
    """A plugin below the logging one raising (a bulkhead's key function) is still one
    ``http.client.request`` record, PLUGIN_ERROR at error level: the call was logged
    for cancellations only, and this outcome left no record at all."""
    from flext_api.client.plugins import BulkheadPlugin

    def raising_key(request: HttpRequest) -> str:
        raise KeyError("tenant")

    transport = MockTransport(lambda request: HttpResponse(200))
    async with FlextApiClient(
        "http://api.test",
        transport=transport,
        default_plugins=False,
        plugins=[LoggingPlugin(), BulkheadPlugin(key=raising_key)],
    ) as client:
        result = await client.get("/x?token=s3cret")
    assert result.exception is not None and result.exception.code is ErrorCode.PLUGIN_ERROR
    (record,) = json_logs.events("http.client.request")
    assert record["error_code"] == "PLUGIN_ERROR"
    assert record["level"] == "error"
    assert "KeyError" in record["error"]
    assert "s3cret" not in str(record)
