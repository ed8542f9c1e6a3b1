"""Resilience policies given NaN, infinite, fractional or huge settings: refused when
built, never accepted to hang, spin, lift a limit or fail every call later."""

from __future__ import annotations

import math

import pytest

from flext_api import FlextResult, RateLimitConfig
from flext_api.client.plugins import RateLimitPlugin
from flext_api.resilience import (
    Bulkhead,
    CircuitConfig,
    RateLimiter,
    RetryBudget,
    hedge,
)
from flext_api.resilience._keyed import IdleMap
from flext_api.resilience._window import SlidingWindow
from flext_api.testing import FakeClock


@pytest.mark.parametrize("window", [0.0, -1.0, math.nan])
def test_budget_refuses_a_bad_window_when_built(window: float) -> None:
    """A window <= 0 or NaN was accepted and then raised on each host's first request,
    so every call through the retry stage failed with PLUGIN_ERROR."""
    with pytest.raises(ValueError, match="window"):
        RetryBudget(window=window)


def test_budget_refuses_a_nan_minimum() -> None:
    """A NaN min_retries made ``retries >= limit`` always false: the budget was lifted."""
    with pytest.raises(ValueError, match="min_retries"):
        RetryBudget(min_retries=math.nan)  # type: ignore[arg-type]


def test_budget_refuses_a_nan_idle_eviction() -> None:
    """A NaN idle time meant no sweep ever ran: per-host state was never forgotten."""
    with pytest.raises(ValueError, match="idle"):
        RetryBudget(idle_eviction=math.nan)


def test_idle_map_and_window_refuse_nan() -> None:
    """The shared building blocks refuse NaN too (it passes a ``<= 0`` check)."""
    with pytest.raises(ValueError, match="idle"):
        IdleMap(lambda key: key, idle=math.nan)
    with pytest.raises(ValueError, match="window"):
        SlidingWindow(math.nan)


def test_an_infinite_budget_window_still_counts() -> None:
    """An infinite window is a window that never forgets, not an error."""
    budget = RetryBudget(ratio=0.0, min_retries=1, window=math.inf)
    assert budget.try_retry("h", 0.0)
    assert not budget.try_retry("h", 1e9)


@pytest.mark.parametrize(
    ("max_concurrent", "max_queue"),
    [(math.nan, 1), (1, math.nan), (2.5, 1), (1, 0.5), (True, 1)],
)
def test_bulkhead_sizes_must_be_ints(max_concurrent: float, max_queue: float) -> None:
    """A NaN cap admitted nobody (every caller queued until its deadline, or forever); a
    NaN queue size bounded nothing: both, and fractions, are a TypeError now."""
    with pytest.raises(TypeError, match="max_"):
        Bulkhead(max_concurrent, max_queue)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [math.nan, math.inf, 2.5, True])
def test_limiter_burst_must_be_an_int(burst: float) -> None:
    """A NaN or infinite burst made every slot "now": the limiter limited nothing."""
    with pytest.raises(TypeError, match="burst"):
        RateLimiter(burst=burst)  # type: ignore[arg-type]


def test_limiter_burst_beyond_a_float_is_refused_when_built() -> None:
    """A burst too large for a float raised OverflowError on every acquire; through a
    RateLimitConfig the plugin failed every call. It is refused when built now."""
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(burst=10**400)
    with pytest.raises(ValueError, match="burst"):
        RateLimitPlugin(RateLimitConfig(enabled=True, burst=10**400))


async def test_a_huge_burst_that_fits_a_float_lets_calls_through() -> None:
    """A huge but representable burst is a limiter that lets everything pass at once."""
    limiter = RateLimiter(rate=1.0, burst=10**300, clock=FakeClock(start=0.0))
    waits = [(await limiter.acquire("h")).value for _ in range(5)]
    assert waits == [0.0] * 5


async def test_hedge_refuses_a_nan_delay() -> None:
    """hedge(delay=NaN) never hedged and re-armed its timer on every loop turn (a busy
    loop until the first attempt finished)."""

    async def attempt(index: int) -> FlextResult[int]:
        return FlextResult.ok(index)

    with pytest.raises(ValueError, match="delay"):
        await hedge(attempt, delay=math.nan)
    with pytest.raises(TypeError, match="max_hedged"):
        await hedge(attempt, delay=1.0, max_hedged=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"recovery_timeout": math.nan}, ValueError),
        ({"recovery_timeout": math.inf}, ValueError),
        ({"failure_threshold": math.nan}, TypeError),
        ({"failure_threshold": 2.5}, TypeError),
        ({"half_open_calls": math.nan}, TypeError),
        ({"recovery_timeout": "60"}, TypeError),
    ],
)
def test_circuit_config_refuses_nan_infinite_and_fractional_values(
    kwargs: dict[str, object], exc: type[Exception]
) -> None:
    """They passed the range checks and failed later, when a breaker was built, under
    BreakerConfig's field names; the error names the CircuitConfig field now."""
    field = next(iter(kwargs))
    with pytest.raises(exc, match=field):
        CircuitConfig(**kwargs)  # type: ignore[arg-type]
