"""RetryPolicy: the pure retry decision and its rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpResponse, RetryConfig
from flext_api.resilience import GiveUp, GiveUpReason, Outcome, Retry, RetryPolicy, RetryState
from flext_api.testing import set_testing

NO_JITTER = RetryConfig(jitter=False)


def failure(code: ErrorCode) -> Outcome:
    return Outcome(error=FlextApiError.from_code(code, "boom"))


def decide(
    outcome: Outcome,
    *,
    policy: RetryPolicy | None = None,
    state: RetryState | None = None,
    method: str = "GET",
    key: bool = False,
    replayable: bool = True,
    now: float = 0.0,
    deadline: float | None = None,
) -> Retry | GiveUp:
    policy = policy or RetryPolicy(NO_JITTER)
    return policy.decide(
        state or RetryState(),
        outcome,
        method=method,
        has_idempotency_key=key,
        replayable=replayable,
        now=now,
        deadline=deadline,
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_for_get(status: int) -> None:
    """Each default retry status gets another attempt after the first backoff."""
    verdict = decide(Outcome(status=status))
    assert isinstance(verdict, Retry)
    assert verdict.delay == 0.5


@pytest.mark.parametrize("status", [400, 401, 404, 409, 501])
def test_other_statuses_pass_through(status: int) -> None:
    """A status outside the retry set is not retried and not turned into an error."""
    verdict = decide(Outcome(status=status))
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.NOT_RETRYABLE and verdict.error is None


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.CONNECT_ERROR,
        ErrorCode.CONNECT_TIMEOUT,
        ErrorCode.DNS_ERROR,
        ErrorCode.POOL_TIMEOUT,
    ],
)
def test_nothing_sent_errors_are_retried_for_any_method(code: ErrorCode) -> None:
    """When nothing reached the server even a POST is retried."""
    assert isinstance(decide(failure(code), method="POST"), Retry)


@pytest.mark.parametrize(
    "code", [ErrorCode.READ_TIMEOUT, ErrorCode.WRITE_TIMEOUT, ErrorCode.PROTOCOL_ERROR]
)
def test_maybe_sent_errors_are_not_retried_for_post(code: ErrorCode) -> None:
    """A POST that may have been processed is not replayed (urllib3#1059)."""
    verdict = decide(failure(code), method="POST")
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.UNSAFE_METHOD and verdict.error is None


@pytest.mark.parametrize("method", ["GET", "head", "PUT", "DELETE", "OPTIONS", "TRACE"])
def test_maybe_sent_errors_are_retried_for_idempotent_methods(method: str) -> None:
    """Idempotent methods (any case) are retried after a read timeout."""
    assert isinstance(decide(failure(ErrorCode.READ_TIMEOUT), method=method), Retry)


def test_status_retry_of_post_needs_an_idempotency_key() -> None:
    """A 503 to a POST is retried only when the request has an Idempotency-Key."""
    assert isinstance(decide(Outcome(status=503), method="POST"), GiveUp)
    assert isinstance(decide(Outcome(status=503), method="POST", key=True), Retry)


def test_idempotency_key_allows_patch_after_read_timeout() -> None:
    """An Idempotency-Key makes a PATCH safe to replay."""
    verdict = decide(failure(ErrorCode.READ_TIMEOUT), method="PATCH", key=True)
    assert isinstance(verdict, Retry)


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.PLUGIN_ERROR,
        ErrorCode.DECODE_ERROR,
        ErrorCode.AUTH_ERROR,
        ErrorCode.CANCELLED,
        ErrorCode.TLS_ERROR,
        ErrorCode.DEADLINE_EXCEEDED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.BULKHEAD_FULL,
    ],
)
def test_never_retried_codes(code: ErrorCode) -> None:
    """Refusals, bad input, bugs and cancellations pass through untouched."""
    verdict = decide(failure(code))
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.NOT_RETRYABLE and verdict.error is None


def test_one_shot_body_is_never_replayed() -> None:
    """A streamed body gives up with an error that says it cannot be replayed."""
    last = FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "refused")
    verdict = decide(Outcome(error=last), replayable=False)
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.BODY_NOT_REPLAYABLE
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.RETRIES_EXHAUSTED
    assert "cannot be replayed" in verdict.error.message
    assert verdict.error.__cause__ is last
    assert verdict.error.details["last_error"] is last


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    """After max_retries + 1 attempts: RETRIES_EXHAUSTED chaining the last error."""
    last = FlextApiError.from_code(ErrorCode.READ_TIMEOUT, "slow")
    verdict = decide(Outcome(error=last), state=RetryState(attempt=4))
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.EXHAUSTED
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.RETRIES_EXHAUSTED
    assert verdict.error.__cause__ is last
    assert verdict.error.details == {"attempts": 4, "last_error": last, "reason": "exhausted"}
    assert "gave up after 4 attempts" in verdict.error.message


def test_zero_retries_passes_the_outcome_through() -> None:
    """max_retries=0 turns retrying off: the outcome is returned, not wrapped."""
    policy = RetryPolicy(RetryConfig(max_retries=0))
    verdict = decide(Outcome(status=503), policy=policy)
    assert isinstance(verdict, GiveUp) and verdict.reason is GiveUpReason.EXHAUSTED
    assert verdict.error is None


def test_testing_attempts_cap_wins() -> None:
    """set_testing(attempts=2) caps attempts below the configured number."""
    policy = RetryPolicy(NO_JITTER)
    with set_testing(True, attempts=2):
        assert policy.max_attempts == 2
        assert isinstance(decide(Outcome(status=503), policy=policy), Retry)
        verdict = decide(Outcome(status=503), policy=policy, state=RetryState(attempt=2))
        assert isinstance(verdict, GiveUp) and verdict.reason is GiveUpReason.EXHAUSTED
    assert policy.max_attempts == 4


def test_backoff_grows_exponentially_to_the_cap() -> None:
    """Without jitter the delays are 0.5 x 2^n, capped at 10 s."""
    policy = RetryPolicy(NO_JITTER)
    assert [policy.backoff(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_survives_a_huge_exponent() -> None:
    """An exponent that overflows a float gives the cap, not an error."""
    policy = RetryPolicy(RetryConfig(backoff_multiplier=10.0, jitter=False))
    assert policy.backoff(5000) == 10.0


@given(retries=st.integers(min_value=0, max_value=2000), seed=st.integers(0, 2**32))
def test_jittered_backoff_stays_within_zero_and_the_cap(retries: int, seed: int) -> None:
    """Full jitter: every delay lies in [0, min(cap, initial x mult^n)]."""
    policy = RetryPolicy(RetryConfig(seed=seed))
    ceiling = min(10.0, 0.5 * 2.0 ** min(retries, 64))
    assert 0.0 <= policy.backoff(retries) <= ceiling


def test_seeded_jitter_is_reproducible() -> None:
    """Two policies with the same seed choose the same delays."""
    first = RetryPolicy(RetryConfig(seed=42))
    second = RetryPolicy(RetryConfig(seed=42))
    assert [first.backoff(n) for n in range(5)] == [second.backoff(n) for n in range(5)]


def test_retry_after_replaces_the_backoff() -> None:
    """A server hint within the cap is the delay."""
    verdict = decide(Outcome(status=503, retry_after=7.0))
    assert isinstance(verdict, Retry) and verdict.delay == 7.0


def test_retry_after_above_the_cap_fails_fast() -> None:
    """Retry-After: 3600 gives RATE_LIMITED at once with retry_after set (urllib3#1338)."""
    verdict = decide(Outcome(status=429, retry_after=3600.0))
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.RETRY_AFTER_TOO_LONG
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.RATE_LIMITED
    assert verdict.error.retry_after == 3600.0
    assert "retry_after_max=60s" in verdict.error.message


def test_retry_after_past_the_deadline_fails_fast() -> None:
    """A hint that would outlive the deadline gives up now, not after sleeping."""
    verdict = decide(Outcome(status=503, retry_after=30.0), now=100.0, deadline=120.0)
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.RETRY_AFTER_PAST_DEADLINE
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.RATE_LIMITED
    assert verdict.error.retry_after == 30.0


def test_retry_after_ignored_when_turned_off() -> None:
    """respect_retry_after=False uses the backoff, however long the hint."""
    policy = RetryPolicy(RetryConfig(jitter=False, respect_retry_after=False))
    verdict = decide(Outcome(status=429, retry_after=3600.0), policy=policy)
    assert isinstance(verdict, Retry) and verdict.delay == 0.5


def test_backoff_past_the_deadline_gives_up() -> None:
    """A backoff longer than what is left ends with DEADLINE_EXCEEDED chaining the cause."""
    last = FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "refused")
    verdict = decide(Outcome(error=last), now=10.0, deadline=10.2)
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.DEADLINE
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.DEADLINE_EXCEEDED
    assert verdict.error.__cause__ is last


def test_retry_records_the_attempt_in_a_new_state() -> None:
    """Each retry yields a new state; the old one is unchanged."""
    state = RetryState()
    verdict = decide(Outcome(status=503), state=state)
    assert isinstance(verdict, Retry)
    assert state.attempt == 1 and state.history == ()
    new = verdict.state
    assert new.attempt == 2 and new.retries == 1
    (record,) = new.history
    assert (record.attempt, record.status, record.error_code, record.delay) == (1, 503, None, 0.5)


def test_give_up_on_a_response_outcome_has_no_cause() -> None:
    """Exhaustion after a plain response (no error) still builds a clear error."""
    verdict = decide(Outcome(status=503), state=RetryState(attempt=4))
    assert isinstance(verdict, GiveUp) and verdict.error is not None
    assert verdict.error.__cause__ is None
    assert "last: HTTP 503" in verdict.error.message


def test_outcome_from_a_success() -> None:
    """A success reduces to its status, with no error and no hint below 400."""
    outcome = Outcome.from_result(FlextResult.ok(HttpResponse(200)), 0.0)
    assert outcome == Outcome(status=200)
    assert outcome.error_code is None


def test_outcome_from_a_status_failure_parses_an_http_date() -> None:
    """An HTTP_STATUS failure yields its status and the Retry-After HTTP-date in seconds."""
    response = HttpResponse(503, headers={"Retry-After": "Thu, 01 Jan 1970 00:01:40 GMT"})
    error = response.error_for_status()
    assert error is not None
    outcome = Outcome.from_result(FlextResult.fail(error), wall_now=40.0)
    assert (outcome.status, outcome.retry_after) == (503, 60.0)
    assert outcome.error_code is ErrorCode.HTTP_STATUS


def test_outcome_keeps_an_error_retry_after() -> None:
    """A retry_after already on the error wins over parsing headers."""
    error = FlextApiError.from_code(ErrorCode.READ_TIMEOUT, "slow", retry_after=2.0)
    assert Outcome.from_result(FlextResult.fail(error), 0.0).retry_after == 2.0


def test_policy_is_immutable_and_replace_shares_the_rng() -> None:
    """Attributes cannot be set; replace() copies with changes and the same RNG."""
    rng = random.Random(1)
    policy = RetryPolicy(RetryConfig(), rng=rng)
    with pytest.raises(AttributeError, match="immutable"):
        policy.config = RetryConfig()
    other = policy.replace(max_retries=7)
    assert other.config.max_retries == 7 and policy.config.max_retries == 3
    assert other.rng is rng


def test_policy_rejects_a_wrong_config_type() -> None:
    """Passing something else than a RetryConfig is a TypeError at construction."""
    with pytest.raises(TypeError, match="RetryConfig"):
        RetryPolicy({"max_retries": 3})  # type: ignore[arg-type]


def test_policy_repr() -> None:
    """The repr shows the retry count, statuses and backoff."""
    assert repr(RetryPolicy()) == (
        "<RetryPolicy max_retries=3 statuses=[429, 500, 502, 503, 504] backoff=0.5s*2^n<=10s>"
    )


@pytest.mark.parametrize("retries", [0, 1, 5000])
def test_a_zero_initial_backoff_stays_zero_however_large_the_multiplier(retries: int) -> None:
    """backoff_initial=0 means no backoff, even where multiplier**n overflows."""
    config = RetryConfig(backoff_initial=0.0, backoff_multiplier=1e300, jitter=False)
    assert RetryPolicy(config).backoff(retries) == 0.0


def test_an_overflowing_backoff_is_the_cap() -> None:
    """A multiplier whose power leaves the float range gives backoff_max, never inf."""
    config = RetryConfig(backoff_initial=0.5, backoff_multiplier=1e300, jitter=False)
    policy = RetryPolicy(config)
    assert [policy.backoff(n) for n in (0, 1, 2, 5000)] == [0.5, 10.0, 10.0, 10.0]
