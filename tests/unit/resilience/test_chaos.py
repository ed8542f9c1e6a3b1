"""ChaosPolicy and Fault: seeded fault injection decisions."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from flext_api import ErrorCode
from flext_api.resilience import ChaosPolicy, Fault, FaultKind


def test_rate_zero_never_injects() -> None:
    """At rate 0 no call gets a fault."""
    policy = ChaosPolicy(0.0, seed=1)
    assert all(policy.pick() is None for _ in range(1000))


def test_rate_one_always_injects() -> None:
    """At rate 1 every call gets a fault."""
    policy = ChaosPolicy(1.0, seed=1)
    assert all(policy.pick() is not None for _ in range(1000))


def test_rate_is_respected_statistically() -> None:
    """About 10 % of calls are hit at rate 0.1."""
    policy = ChaosPolicy(0.1, seed=3)
    hits = sum(policy.pick() is not None for _ in range(10_000))
    assert 800 < hits < 1200


def test_same_seed_same_faults() -> None:
    """Two policies with one seed inject the same faults in the same calls."""
    first = ChaosPolicy(0.3, seed=11)
    second = ChaosPolicy(0.3, rng=random.Random(11))
    assert [first.pick() for _ in range(200)] == [second.pick() for _ in range(200)]


def test_weights_pick_faults_in_proportion() -> None:
    """A fault with weight 3 is picked about three times as often as one with weight 1."""
    heavy = Fault.response(503, weight=3.0)
    light = Fault.error(ErrorCode.CONNECT_ERROR)
    policy = ChaosPolicy(1.0, [heavy, light], seed=5)
    picks = [policy.pick() for _ in range(8000)]
    ratio = picks.count(heavy) / picks.count(light)
    assert 2.5 < ratio < 3.5


def test_disabled_policy_never_injects() -> None:
    """enabled=False turns injection off without changing the rate."""
    policy = ChaosPolicy(1.0, seed=1, enabled=False)
    assert policy.pick() is None
    assert repr(policy) == "<ChaosPolicy rate=1 faults=5 off>"


def test_fault_descriptions() -> None:
    """Each kind of fault describes itself in a few words."""
    assert Fault.error(ErrorCode.READ_TIMEOUT).describe() == "error READ_TIMEOUT"
    assert Fault.delay(1.5).describe() == "latency 1.5s"
    assert Fault.response(429, retry_after=2).describe() == "status 429 retry-after 2s"
    assert Fault.response(503).kind is FaultKind.STATUS


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fault(FaultKind.ERROR),
        lambda: Fault.delay(-1.0),
        lambda: Fault.response(42),
        lambda: Fault.response(503, weight=0.0),
        lambda: ChaosPolicy(1.5),
        lambda: ChaosPolicy(0.5, []),
    ],
)
def test_invalid_faults_and_policies_are_rejected(build: Callable[[], object]) -> None:
    """Incomplete faults, bad weights, rates and empty fault lists are ValueErrors."""
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_a_status_fault_needs_a_finite_retry_after(value: float) -> None:
    """A NaN, infinite or negative Retry-After is refused when the fault is built, not
    left to fail every injected call as PLUGIN_ERROR (or send a "Retry-After: -1")."""
    with pytest.raises(ValueError, match="retry_after"):
        Fault.response(429, retry_after=value)
    assert Fault.response(429, retry_after=0).retry_after == 0
