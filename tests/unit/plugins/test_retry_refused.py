"""RetryPlugin: a retry refused below it (breaker, limiter, bulkhead) still says how many
attempts were sent and what the last one got, like every other give-up."""

from __future__ import annotations

import pytest

from flext_api import (
    BreakerConfig,
    ErrorCode,
    FlextApiError,
    FlextResult,
    HttpResponse,
    RateLimitConfig,
    RetryConfig,
)
from flext_api._errors import NOT_SENT, TimeoutError
from flext_api.client._plugin import build_pipeline
from flext_api.client.plugins import CircuitBreakerPlugin, RateLimitPlugin, RetryPlugin
from flext_api.testing import FakeClock

from ._fakes import Upstream, get, ok

NO_JITTER = RetryConfig(jitter=False, max_retries=3)


def _retry(clock: FakeClock) -> RetryPlugin:
    return RetryPlugin(NO_JITTER, clock=clock, budget=None)


def _not_sent() -> FlextResult[HttpResponse]:
    return FlextResult.fail(
        TimeoutError(
            "deadline passed before sending",
            code=ErrorCode.DEADLINE_EXCEEDED,
            details={"reason": NOT_SENT},
        )
    )


async def test_an_opened_breaker_refusing_a_retry_reports_the_attempts_sent() -> None:
    """Two 503s open the breaker (2 in a row); the refused third attempt's CIRCUIT_OPEN
    carries attempts == 2, the last 503 as response, last_error and __cause__."""
    clock = FakeClock(start=0.0)
    breaker = CircuitBreakerPlugin(BreakerConfig(consecutive_failures=2), clock=clock)
    upstream = Upstream([503])
    pipeline = build_pipeline([_retry(clock), breaker], upstream)
    result = await pipeline(get())
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert upstream.calls == 2
    assert error.details["attempts"] == 2
    last: FlextApiError = error.details["last_error"]
    assert last.code is ErrorCode.HTTP_STATUS and error.__cause__ is last
    assert error.response is upstream.responses[-1]
    assert error.response.status_code == 503 and error.response.attempts == 2
    assert error.retry_after is not None  # the breaker's own hint is kept


@pytest.mark.parametrize(
    "refusal", [ErrorCode.CIRCUIT_OPEN, ErrorCode.RATE_LIMITED, ErrorCode.BULKHEAD_FULL]
)
async def test_a_refused_retry_carries_the_attempts_and_the_last_failure(
    refusal: ErrorCode,
) -> None:
    """503, 503, then a refusal from a stage below: attempts == 2 and the last 503 kept."""
    upstream = Upstream([503, 503, refusal])
    result = await _retry(FakeClock(start=0.0)).handle(get(), upstream)
    error = result.exception
    assert error is not None and error.code is refusal
    assert error.details["attempts"] == 2
    assert error.response is not None and error.response.status_code == 503
    assert error.__cause__ is error.details["last_error"]


async def test_a_retry_refused_after_a_response_keeps_that_response() -> None:
    """With fail_on_http_error=False (a 503 response, no error) the refusal still carries
    the 503 response and attempts == 1; last_error is None, as in RETRIES_EXHAUSTED."""
    upstream = Upstream([ok(503), ErrorCode.CIRCUIT_OPEN])
    result = await _retry(FakeClock(start=0.0)).handle(get(), upstream)
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert error.details["attempts"] == 1 and error.details["last_error"] is None
    assert error.response is not None and error.response.status_code == 503


async def test_a_retry_not_sent_for_its_deadline_reports_the_attempts_sent() -> None:
    """A retry refused before sending (DEADLINE_EXCEEDED, reason not_sent) counts as not
    sent: attempts == 1, the previous connect error chained."""
    upstream = Upstream([ErrorCode.CONNECT_ERROR, _not_sent()])
    result = await _retry(FakeClock(start=0.0)).handle(get(), upstream)
    error = result.exception
    assert error is not None and error.code is ErrorCode.DEADLINE_EXCEEDED
    assert error.details["attempts"] == 1 and error.details["reason"] == NOT_SENT
    last = error.details["last_error"]
    assert last.code is ErrorCode.CONNECT_ERROR and error.__cause__ is last


async def test_the_rate_limiter_refusing_a_retry_reports_the_attempts_sent() -> None:
    """1 request/s and a 0.8 s deadline: the retry's slot (at 1 s) lies past the deadline,
    so the limiter refuses it; RATE_LIMITED says 1 attempt and keeps the 503."""
    clock = FakeClock(start=0.0)
    limit = RateLimitPlugin(RateLimitConfig(enabled=True, rate=1.0, adaptive=False), clock=clock)
    upstream = Upstream([503])
    pipeline = build_pipeline([_retry(clock), limit], upstream)
    result = await pipeline(get(deadline=0.8))
    error = result.exception
    assert error is not None and error.code is ErrorCode.RATE_LIMITED
    assert upstream.calls == 1 and clock.sleeps[:1] == [0.5]
    assert error.details["attempts"] == 1
    assert error.response is not None and error.response.status_code == 503


async def test_a_non_retryable_failure_after_retries_reports_the_attempts() -> None:
    """503, then a TLS error (not retryable, no response, but it reached the transport):
    the TLS error is returned with attempts == 2."""
    upstream = Upstream([503, ErrorCode.TLS_ERROR])
    result = await _retry(FakeClock(start=0.0)).handle(get(), upstream)
    error = result.exception
    assert error is not None and error.code is ErrorCode.TLS_ERROR
    assert error.details["attempts"] == 2
    assert "last_error" not in error.details  # it is the last attempt's own error


async def test_a_refusal_of_the_first_attempt_is_untouched() -> None:
    """Nothing was sent and nothing retried: the refusal passes through as it is."""
    upstream = Upstream([ErrorCode.CIRCUIT_OPEN])
    result = await _retry(FakeClock(start=0.0)).handle(get(), upstream)
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert error.details == {} and error.response is None and error.__cause__ is None
