"""RetryBudget: retries stay a fraction of recent requests, per host."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flext_api import RetryConfig
from flext_api.resilience import RetryBudget


def test_minimum_retries_are_allowed_without_traffic() -> None:
    """A quiet host still gets min_retries retries per window."""
    budget = RetryBudget(ratio=0.2, min_retries=3, window=10.0)
    assert [budget.try_retry("h", 0.0) for _ in range(4)] == [True, True, True, False]


def test_dead_host_gets_ratio_of_requests_as_retries() -> None:
    """100 failing requests in the window allow 20 retries, not 300."""
    budget = RetryBudget(ratio=0.2, min_retries=3, window=10.0)
    granted = 0
    for i in range(100):
        now = i * 0.05
        budget.record_request("dead", now)
        granted += sum(budget.try_retry("dead", now) for _ in range(3))
    assert granted == 20
    assert budget.allowance("dead", 5.0) == 0


def test_budget_is_per_host() -> None:
    """Spending one host's budget leaves another's untouched."""
    budget = RetryBudget(ratio=0.0, min_retries=1, window=10.0)
    assert budget.try_retry("a", 0.0)
    assert not budget.try_retry("a", 0.0)
    assert budget.try_retry("b", 0.0)


def test_budget_refills_as_the_window_slides() -> None:
    """Retries spent leave the window after ``window`` seconds."""
    budget = RetryBudget(ratio=0.0, min_retries=1, window=10.0)
    assert budget.try_retry("h", 0.0)
    assert not budget.try_retry("h", 9.0)
    assert budget.try_retry("h", 10.5)


def test_from_config_uses_the_retry_defaults() -> None:
    """The default RetryConfig gives a 20 % budget, a floor of 3/s (30 per 10 s window)."""
    budget = RetryBudget.from_config(RetryConfig())
    assert budget is not None
    assert (budget.ratio, budget.min_retries, budget.window) == (0.2, 30, 10.0)
    assert repr(budget) == "<RetryBudget ratio=0.2 min_retries=30 window=10s hosts=0>"


def test_from_config_without_ratio_is_no_budget() -> None:
    """budget_ratio=None turns the budget off."""
    assert RetryBudget.from_config(RetryConfig(budget_ratio=None)) is None


@pytest.mark.parametrize(("ratio", "min_retries"), [(-0.1, 1), (1.5, 1), (0.2, -1)])
def test_invalid_settings_are_rejected(ratio: float, min_retries: int) -> None:
    """A ratio outside [0, 1] or a negative minimum is a ValueError."""
    with pytest.raises(ValueError):
        RetryBudget(ratio=ratio, min_retries=min_retries)


@given(
    events=st.lists(
        st.tuples(st.floats(0, 0.5), st.booleans(), st.integers(0, 3)), min_size=1, max_size=200
    ),
    ratio=st.floats(0, 1),
    min_retries=st.integers(0, 5),
)
def test_retries_never_exceed_the_budget(
    events: list[tuple[float, bool, int]], ratio: float, min_retries: int
) -> None:
    """Whatever the traffic, retries granted in the window stay within the budget."""
    budget = RetryBudget(ratio=ratio, min_retries=min_retries, window=10.0)
    now = 0.0
    for step, new_request, retries in events:
        now += step
        if new_request:
            budget.record_request("h", now)
        for _ in range(retries):
            if budget.try_retry("h", now):
                requests, spent = budget._windows.get("h", now).totals(now)
                assert spent <= max(min_retries, ratio * requests)
