"""Second hostile pass over the sans-IO policies: odd server hints, a spent deadline and
fault weights at the edge of the float range."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from flext_api import ErrorCode, RetryConfig
from flext_api.resilience import ChaosPolicy, Fault, GiveUp, Retry, RetryPolicy, RetryState
from flext_api.resilience._retry import GiveUpReason, Outcome


def _policy() -> RetryPolicy:
    return RetryPolicy(RetryConfig(seed=3, backoff_initial=0.5, backoff_max=0.5))


def test_fault_weights_that_sum_past_the_float_range_still_pick() -> None:
    """Two faults of weight 1e308 each share the injections; pick() never leaves the list."""
    faults = [Fault.response(503, weight=1e308), Fault.response(429, weight=1e308)]
    policy = ChaosPolicy(1.0, faults, seed=11)
    picked = Counter(fault.status for fault in (policy.pick() for _ in range(200)) if fault)
    assert set(picked) == {503, 429}
    assert sum(picked.values()) == 200


def test_tiny_and_huge_weights_keep_their_proportions() -> None:
    """Scaling the weights does not change the shares: a weight 3x another gets ~3x."""
    faults = [Fault.response(503, weight=3e307), Fault.response(429, weight=1e307)]
    policy = ChaosPolicy(1.0, faults, seed=5)
    picked = Counter(fault.status for fault in (policy.pick() for _ in range(4000)) if fault)
    assert 2.5 < picked[503] / picked[429] < 3.5


def test_a_negative_retry_after_means_now() -> None:
    """A hint already in the past (negative seconds) retries at once, not with delay -5."""
    verdict = _policy().decide(
        RetryState(), Outcome(status=503, retry_after=-5.0), method="GET", now=0.0
    )
    assert isinstance(verdict, Retry)
    assert verdict.delay == 0.0
    assert verdict.state.history[0].delay == 0.0


def test_a_nan_retry_after_is_no_hint() -> None:
    """A NaN hint says nothing: the backoff decides, never a NaN sleep."""
    verdict = _policy().decide(
        RetryState(), Outcome(status=503, retry_after=math.nan), method="GET", now=0.0
    )
    assert isinstance(verdict, Retry)
    assert 0.0 <= verdict.delay <= 0.5


@pytest.mark.parametrize("hint", [0.0, -1.0, None])
def test_no_retry_starts_once_the_deadline_has_passed(hint: float | None) -> None:
    """Deadline spent: DEADLINE_EXCEEDED, even when the server said "retry now"."""
    verdict = _policy().decide(
        RetryState(),
        Outcome(status=503, retry_after=hint),
        method="GET",
        now=10.0,
        deadline=10.0,
    )
    assert isinstance(verdict, GiveUp)
    assert verdict.reason is GiveUpReason.DEADLINE
    assert verdict.error is not None
    assert verdict.error.code is ErrorCode.DEADLINE_EXCEEDED
    assert verdict.error.details["reason"] == "deadline"


def test_a_hint_within_the_deadline_is_still_honoured() -> None:
    """With time left, a 0 s hint is a retry at once (the deadline rule bites only at 0)."""
    verdict = _policy().decide(
        RetryState(), Outcome(status=503, retry_after=0.0), method="GET", now=10.0, deadline=10.5
    )
    assert isinstance(verdict, Retry)
    assert verdict.delay == 0.0
