"""RetryPlugin: drives RetryPolicy over a fake upstream on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse, RetryConfig
from flext_api.client._plugin import build_pipeline
from flext_api.client.plugins import RetryPlugin
from flext_api.resilience import ResilienceEvent, RetryBudget, RetryGaveUp, RetryScheduled
from flext_api.testing import FakeClock, set_testing

from ._fakes import Upstream, get, ok, post

NO_JITTER = RetryConfig(jitter=False)


def plugin(config: RetryConfig = NO_JITTER, **kwargs: Any) -> tuple[RetryPlugin, FakeClock]:
    clock = FakeClock(start=0.0)
    return RetryPlugin(config, clock=clock, **kwargs), clock


async def test_a_success_is_one_attempt() -> None:
    """A 200 returns at once: one call, no sleep, attempts == 1."""
    retry, clock = plugin()
    upstream = Upstream([200])
    result = await retry.handle(get(), upstream)
    assert result.value.status_code == 200 and result.value.attempts == 1
    assert upstream.calls == 1 and clock.sleeps == []


async def test_a_retryable_status_is_retried_and_released() -> None:
    """A 503 then a 200: two attempts, the 503 response closed before the retry."""
    retry, clock = plugin()
    upstream = Upstream([503, 200])
    result = await retry.handle(get(), upstream)
    assert result.value.status_code == 200 and result.value.attempts == 2
    assert clock.sleeps == [0.5]
    assert upstream.responses[0].closed


async def test_exhaustion_chains_the_last_error() -> None:
    """Four 503s: RETRIES_EXHAUSTED, cause and details holding the last attempt's error."""
    retry, clock = plugin()
    upstream = Upstream([503])
    request = get()
    result = await retry.handle(request, upstream)
    error = result.exception
    assert error is not None and error.code is ErrorCode.RETRIES_EXHAUSTED
    assert upstream.calls == 4 and clock.sleeps == [0.5, 1.0, 2.0]
    last: FlextApiError = error.details["last_error"]
    assert error.__cause__ is last and last.code is ErrorCode.HTTP_STATUS
    assert error.details["attempts"] == 4
    assert error.request is request
    assert last.response is not None and last.response.attempts == 4
    assert [r.closed for r in upstream.responses] == [True, True, True, False]


async def test_a_huge_retry_after_fails_fast() -> None:
    """Retry-After: 3600 gives RATE_LIMITED at once with retry_after, without sleeping."""
    retry, clock = plugin()
    upstream = Upstream([_status(429, {"Retry-After": "3600"})])
    result = await retry.handle(get(), upstream)
    assert result.error_code is ErrorCode.RATE_LIMITED
    assert result.exception is not None and result.exception.retry_after == 3600.0
    assert upstream.calls == 1 and clock.sleeps == []


async def test_retry_after_http_date_is_honoured() -> None:
    """A Retry-After HTTP-date one minute ahead makes the plugin sleep 60 s."""
    retry, clock = plugin()
    # FakeClock wall time starts at 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT.
    upstream = Upstream([_status(503, {"Retry-After": "Tue, 14 Nov 2023 22:14:20 GMT"}), 200])
    result = await retry.handle(get(), upstream)
    assert result.is_success
    assert clock.sleeps == [60.0]


async def test_retry_after_beyond_the_request_deadline_fails_fast() -> None:
    """A hint longer than the time left before request.deadline fails fast."""
    retry, _ = plugin()
    upstream = Upstream([_status(503, {"Retry-After": "30"})])
    result = await retry.handle(get(deadline=10.0), upstream)
    assert result.error_code is ErrorCode.RATE_LIMITED
    assert upstream.calls == 1


async def test_backoff_beyond_the_deadline_gives_up() -> None:
    """When the next backoff would pass the deadline the result is DEADLINE_EXCEEDED."""
    retry, clock = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    result = await retry.handle(get(deadline=1.0), upstream)
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    assert upstream.calls == 2 and clock.sleeps == [0.5]


async def test_post_is_not_retried_after_a_read_timeout() -> None:
    """A POST whose outcome is unknown is returned as it failed."""
    retry, _ = plugin()
    upstream = Upstream([ErrorCode.READ_TIMEOUT])
    result = await retry.handle(post(), upstream)
    assert result.error_code is ErrorCode.READ_TIMEOUT
    assert upstream.calls == 1


async def test_post_is_retried_after_a_connect_error() -> None:
    """Nothing was sent: the POST is retried."""
    retry, _ = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR, 201])
    result = await retry.handle(post(), upstream)
    assert result.value.status_code == 201 and upstream.calls == 2


async def test_generated_idempotency_key_is_the_same_on_every_attempt() -> None:
    """idempotency_key=True adds one key before the first attempt and reuses it."""
    retry, _ = plugin()
    upstream = Upstream([503, 503, 201])
    result = await retry.handle(post(extensions={"idempotency_key": True}), upstream)
    assert result.value.status_code == 201
    keys = {h["idempotency-key"] for h in upstream.attempt_headers}
    assert len(keys) == 1 and len(keys.pop()) == 36


async def test_given_idempotency_key_is_used() -> None:
    """A str idempotency_key becomes the header value."""
    retry, _ = plugin()
    upstream = Upstream([200])
    await retry.handle(post(extensions={"idempotency_key": "order-42"}), upstream)
    assert upstream.attempt_headers[0]["idempotency-key"] == "order-42"


async def test_an_existing_idempotency_header_is_kept() -> None:
    """A request that already has the header keeps its own key."""
    retry, _ = plugin()
    upstream = Upstream([200])
    request = post(headers={"Idempotency-Key": "mine"}, extensions={"idempotency_key": True})
    await retry.handle(request, upstream)
    assert upstream.attempt_headers[0]["idempotency-key"] == "mine"


@pytest.mark.parametrize("value", ["", "  ", 5, "key\r\nX-Injected: 1"])
async def test_a_bad_idempotency_key_is_invalid(value: object) -> None:
    """An empty, non-str or CR/LF-carrying idempotency_key is INVALID_REQUEST, unsent."""
    retry, _ = plugin()
    upstream = Upstream([200])
    result = await retry.handle(post(extensions={"idempotency_key": value}), upstream)
    assert result.error_code is ErrorCode.INVALID_REQUEST and upstream.calls == 0


@pytest.mark.parametrize("header", ["", "   "])
async def test_a_blank_idempotency_header_does_not_make_a_post_replayable(header: str) -> None:
    """A POST carrying an empty Idempotency-Key reached the server four times, with
    nothing for it to deduplicate on; it is retried as a POST without a key: not at all."""
    retry, _ = plugin()
    upstream = Upstream([503, 503, 201])
    result = await retry.handle(post(headers={"Idempotency-Key": header}), upstream)
    assert result.error_code is ErrorCode.HTTP_STATUS and upstream.calls == 1


@pytest.mark.parametrize(("override", "calls"), [(1, 2), (0, 1), (None, 1), (False, 1), (True, 4)])
async def test_per_request_retry_override(override: object, calls: int) -> None:
    """extensions['retry'] as an int, None, False or True changes how many attempts run."""
    retry, _ = plugin()
    upstream = Upstream([503])
    await retry.handle(get(extensions={"retry": override}), upstream)
    assert upstream.calls == calls


async def test_per_request_retry_config_override() -> None:
    """A RetryConfig in extensions['retry'] replaces the plugin's for that request."""
    retry, _ = plugin()
    config = RetryConfig(statuses=frozenset({418}), max_retries=1, jitter=False)
    upstream = Upstream([418])
    await retry.handle(get(extensions={"retry": config}), upstream)
    await retry.handle(get(extensions={"retry": config}), upstream)
    assert upstream.calls == 4
    disabled = Upstream([503])
    await retry.handle(get(extensions={"retry": RetryConfig(enabled=False)}), disabled)
    assert disabled.calls == 1


async def test_zero_retries_returns_the_original_failure() -> None:
    """extensions['retry'] = 0 returns the attempt's own error, not RETRIES_EXHAUSTED."""
    retry, _ = plugin()
    result = await retry.handle(get(extensions={"retry": 0}), Upstream([503]))
    assert result.error_code is ErrorCode.HTTP_STATUS


@pytest.mark.parametrize("override", [-1, "three", 2.5])
async def test_a_bad_retry_override_is_invalid(override: object) -> None:
    """A negative int or another type in extensions['retry'] is INVALID_REQUEST."""
    retry, _ = plugin()
    upstream = Upstream([200])
    result = await retry.handle(get(extensions={"retry": override}), upstream)
    assert result.error_code is ErrorCode.INVALID_REQUEST and upstream.calls == 0


async def test_int_overrides_are_cached() -> None:
    """The same int override reuses one policy."""
    retry, _ = plugin()
    await retry.handle(get(extensions={"retry": 2}), Upstream([200]))
    first = retry._policies[2]
    await retry.handle(get(extensions={"retry": 2}), Upstream([200]))
    assert retry._policies[2] is first


async def test_override_cache_stays_bounded() -> None:
    """Many distinct overrides do not grow the policy cache without bound."""
    retry, _ = plugin()
    for n in range(200):
        await retry.handle(get(extensions={"retry": n}), Upstream([200]))
    assert len(retry._policies) <= 64


async def test_disabled_config_makes_one_attempt() -> None:
    """RetryConfig(enabled=False) turns the plugin into a pass-through."""
    retry, _ = plugin(RetryConfig(enabled=False))
    upstream = Upstream([503])
    await retry.handle(get(), upstream)
    await retry.handle(get(extensions={"retry": True}), upstream)
    assert upstream.calls == 2


async def test_a_streamed_body_is_never_replayed() -> None:
    """A one-shot stream body: one attempt, then an error saying it cannot be replayed."""

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    retry, _ = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    result = await retry.handle(HttpRequest("PUT", "http://h/x", stream=body()), upstream)
    assert result.error_code is ErrorCode.RETRIES_EXHAUSTED
    assert "cannot be replayed" in (result.error or "")
    assert upstream.calls == 1


async def test_budget_limits_retries_against_a_dead_host() -> None:
    """50 requests to a dead host make at most 50 + 20 % retries, not 4x the traffic."""
    retry, _ = plugin(budget=RetryBudget(ratio=0.2, min_retries=3, window=1_000.0))
    upstream = Upstream([503])
    results = [await retry.handle(get(), upstream) for _ in range(50)]
    assert upstream.calls <= 50 + 10
    reasons = {r.exception.details["reason"] for r in results if r.exception is not None}
    assert reasons == {"exhausted", "budget"}


async def test_no_budget() -> None:
    """budget=None retries every request fully."""
    retry, _ = plugin(budget=None)
    upstream = Upstream([503])
    for _ in range(10):
        await retry.handle(get(), upstream)
    assert upstream.calls == 40


async def test_responses_are_returned_when_http_errors_are_not_failures() -> None:
    """With fail_on_http_error=False the last 503 comes back as a response."""
    retry, _ = plugin()
    upstream = Upstream([ok(503)])
    result = await retry.handle(get(), upstream)
    assert result.is_success and result.value.status_code == 503
    assert result.value.attempts == 4 and upstream.calls == 4


async def test_a_non_retryable_outcome_after_a_retry_passes_through() -> None:
    """503 then 404: the 404 failure is returned with attempts == 2."""
    retry, _ = plugin()
    upstream = Upstream([503, 404])
    result = await retry.handle(get(), upstream)
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.attempts == 2


async def test_retries_carry_the_attempt_number() -> None:
    """Attempts after the first see request.extensions['attempt']."""
    retry, _ = plugin()
    seen: list[object] = []

    async def upstream(request: HttpRequest) -> FlextResult[HttpResponse]:
        seen.append(request.extensions.get("attempt"))
        return ok(503) if len(seen) < 3 else ok(200)

    await retry.handle(get(), upstream)
    assert seen == [None, 2, 3]


async def test_testing_mode_caps_attempts() -> None:
    """set_testing(attempts=2) caps the plugin at two attempts."""
    retry, _ = plugin()
    upstream = Upstream([503])
    with set_testing(True, attempts=2):
        await retry.handle(get(), upstream)
    assert upstream.calls == 2


async def test_events_are_emitted() -> None:
    """Each retry emits RetryScheduled; giving up emits RetryGaveUp."""
    events: list[ResilienceEvent] = []
    retry, _ = plugin(RetryConfig(jitter=False, max_retries=1), hooks=[events.append])
    await retry.handle(get(), Upstream([503]))
    assert events == [
        RetryScheduled("api.example.com", "GET", 1, 0.5, 503, ErrorCode.HTTP_STATUS, None),
        RetryGaveUp("api.example.com", "GET", 2, "exhausted", ErrorCode.HTTP_STATUS),
    ]


async def test_a_failing_close_is_logged_and_the_retry_goes_on() -> None:
    """A response whose close raises is logged; the next attempt still runs."""

    async def broken_close() -> None:
        raise OSError("reset by peer")

    failing = HttpResponse(503, close=broken_close)
    retry, _ = plugin()
    upstream = Upstream([FlextResult.ok(failing), 200])
    with structlog.testing.capture_logs() as logs:
        result = await retry.handle(get(), upstream)
    assert result.value.status_code == 200
    assert logs[0]["event"] == "closing a discarded response failed"


async def test_works_inside_a_pipeline() -> None:
    """Built into a pipeline the plugin retries the stages below it."""
    retry, _ = plugin()
    upstream = Upstream([ErrorCode.CONNECT_TIMEOUT, 200])
    pipeline = build_pipeline([retry], upstream)
    result = await pipeline(get())
    assert result.value.attempts == 2
    assert repr(retry) == "<RetryPlugin max_retries=3 budget=20%>"
    assert repr(RetryPlugin(budget=None)) == "<RetryPlugin max_retries=3 budget=off>"


def _status(status: int, headers: dict[str, str]) -> FlextResult[HttpResponse]:
    error = HttpResponse(status, headers=headers).error_for_status()
    assert error is not None
    return FlextResult.fail(error)
