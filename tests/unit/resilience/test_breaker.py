"""CircuitBreaker: the closed / open / half-open state machine and manual states."""

from __future__ import annotations

import random

import pytest

from flext_api import BreakerConfig
from flext_api.resilience import (
    Admit,
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
    Reject,
    ResilienceEvent,
)

# The rules' own figures (the defaults are asserted on their own below).
NO_JITTER = BreakerConfig(open_jitter=0.0, minimum_calls=10, open_duration=30.0)


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read through a call so each assert re-reads it."""
    return breaker.state


def admit(breaker: CircuitBreaker, now: float = 0.0) -> Admit:
    """Ask the breaker and insist on an admission."""
    verdict = breaker.allow(now)
    assert isinstance(verdict, Admit)
    return verdict


def fail_n(breaker: CircuitBreaker, n: int, now: float = 0.0) -> None:
    for _ in range(n):
        verdict = breaker.allow(now)
        assert isinstance(verdict, Admit)
        breaker.on_failure(now, 0.01, verdict)


def succeed_n(breaker: CircuitBreaker, n: int, now: float = 0.0) -> None:
    for _ in range(n):
        verdict = breaker.allow(now)
        assert isinstance(verdict, Admit)
        breaker.on_success(now, 0.01, verdict)


def open_breaker(config: BreakerConfig = NO_JITTER, now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(config)
    fail_n(breaker, config.consecutive_failures, now)
    assert state_of(breaker) is BreakerState.OPEN
    return breaker


def test_opens_after_consecutive_failures() -> None:
    """Five failures in a row open the breaker; four do not."""
    breaker = CircuitBreaker(NO_JITTER)
    fail_n(breaker, 4)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_n(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


def test_a_success_resets_the_consecutive_count() -> None:
    """Failures separated by a success do not add up to a consecutive run."""
    breaker = CircuitBreaker(NO_JITTER)
    fail_n(breaker, 4)
    succeed_n(breaker, 1)
    fail_n(breaker, 4)
    assert state_of(breaker) is BreakerState.CLOSED


def test_opens_on_failure_ratio_with_minimum_calls() -> None:
    """50 % failures over >= 10 calls in the window open it, without a 5-failure run."""
    breaker = CircuitBreaker(NO_JITTER)
    for i in range(9):
        if i % 2:
            fail_n(breaker, 1, now=float(i))
        else:
            succeed_n(breaker, 1, now=float(i))
    assert state_of(breaker) is BreakerState.CLOSED  # 4/9 failures, and only 9 calls
    fail_n(breaker, 1, now=9.0)  # 5/10
    assert state_of(breaker) is BreakerState.OPEN


def test_ratio_needs_the_minimum_throughput() -> None:
    """Below minimum_calls even 100 % failures do not trip the ratio rule."""
    config = BreakerConfig(consecutive_failures=100, minimum_calls=10, open_jitter=0.0)
    breaker = CircuitBreaker(config)
    fail_n(breaker, 9)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_n(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


def test_failures_outside_the_window_do_not_count() -> None:
    """Old failures slide out of the 30 s window before the ratio is computed."""
    config = BreakerConfig(consecutive_failures=100, open_jitter=0.0)
    breaker = CircuitBreaker(config)
    fail_n(breaker, 6, now=0.0)
    succeed_n(breaker, 6, now=40.0)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failure_stats == (6, 0, 0)


def test_open_breaker_rejects_with_time_until_half_open() -> None:
    """While open, calls are refused with retry_after = time left."""
    breaker = open_breaker()
    verdict = breaker.allow(12.0)
    assert verdict == Reject(BreakerState.OPEN, 18.0)


def test_half_open_after_the_open_time() -> None:
    """Once the open time has passed the next call is a trial."""
    breaker = open_breaker()
    verdict = breaker.allow(30.0)
    assert isinstance(verdict, Admit) and verdict.trial
    assert state_of(breaker) is BreakerState.HALF_OPEN


def test_half_open_admits_only_the_trial_budget() -> None:
    """Three trial calls go through; the fourth is refused while they run."""
    breaker = open_breaker()
    trials = [breaker.allow(30.0) for _ in range(3)]
    assert all(isinstance(t, Admit) for t in trials)
    assert breaker.allow(30.0) == Reject(BreakerState.HALF_OPEN, None)


def test_half_open_closes_when_every_trial_succeeds() -> None:
    """All trial calls succeeding closes the breaker."""
    breaker = open_breaker()
    trials = [breaker.allow(30.0) for _ in range(3)]
    for trial in trials[:2]:
        assert isinstance(trial, Admit)
        breaker.on_success(31.0, 0.1, trial)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert isinstance(trials[2], Admit)
    breaker.on_success(31.0, 0.1, trials[2])
    assert state_of(breaker) is BreakerState.CLOSED


def test_a_failed_trial_reopens_with_a_longer_open_time() -> None:
    """One trial failure re-opens at once, for twice as long."""
    breaker = open_breaker()
    trial = breaker.allow(30.0)
    assert isinstance(trial, Admit)
    breaker.on_failure(30.5, 0.1, trial)
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.open_until == pytest.approx(30.5 + 60.0)


def test_open_duration_grows_to_the_cap_and_resets_on_close() -> None:
    """Consecutive openings last 30, 60, 120, 240, 300, 300 s; a close resets it."""
    breaker = open_breaker()
    now = 0.0
    durations = [breaker.open_until - now]
    for _ in range(5):
        now = breaker.open_until
        trial = breaker.allow(now)
        assert isinstance(trial, Admit)
        breaker.on_failure(now, 0.1, trial)
        durations.append(breaker.open_until - now)
    assert durations == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    now = breaker.open_until
    succeed_n(breaker, 3, now)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_n(breaker, 5, now)
    assert breaker.open_until - now == 30.0


def test_open_duration_jitter_only_shortens() -> None:
    """With 10 % jitter the open time lies in [4.5, 5] s, never above the base."""
    for seed in range(50):
        breaker = CircuitBreaker(BreakerConfig(), rng=random.Random(seed))
        fail_n(breaker, 5)
        assert 4.5 <= breaker.open_until <= 5.0


def fail_call_n(breaker: CircuitBreaker, n: int, now: float = 0.0) -> None:
    for _ in range(n):
        breaker.on_failure(now, 0.01, admit(breaker, now), host_down=False)


def test_defaults_are_rederived_from_the_anchors() -> None:
    """5 host-down failures in a row (Envoy), 50 % of >= 100 calls in 30 s (r4j, Polly),
    5 s open (Polly) growing to 300 s (Envoy)."""
    config = BreakerConfig()
    assert (config.consecutive_failures, config.failure_ratio) == (5, 0.5)
    assert (config.minimum_calls, config.window) == (100, 30.0)
    assert (config.open_duration, config.open_duration_max) == (5.0, 300.0)


def test_call_failures_count_only_in_the_ratio() -> None:
    """Failures that are not the host's (host_down=False) never open it as a run."""
    breaker = CircuitBreaker(BreakerConfig())
    fail_call_n(breaker, 60)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failure_stats == (60, 60, 0)


def test_call_failures_open_it_as_a_ratio_of_enough_calls() -> None:
    """Call failures reaching 50 % of >= 100 calls in the window open the breaker."""
    breaker = CircuitBreaker(BreakerConfig())
    succeed_n(breaker, 50)
    fail_call_n(breaker, 49)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_call_n(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


def test_a_call_failure_ends_a_run_of_host_down_failures() -> None:
    """A host that answers, even with a 500, is up: the host-down run starts again."""
    breaker = CircuitBreaker(BreakerConfig())
    fail_n(breaker, 4)
    fail_call_n(breaker, 1)
    fail_n(breaker, 4)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_n(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


def test_results_from_before_the_opening_are_ignored_in_half_open() -> None:
    """A slow call admitted while closed cannot close a half-open breaker."""
    breaker = CircuitBreaker(NO_JITTER)
    stale = breaker.allow(0.0)
    assert isinstance(stale, Admit)
    fail_n(breaker, 5)
    trials = [breaker.allow(30.0) for _ in range(3)]
    breaker.on_success(31.0, 0.1, stale)
    breaker.on_failure(31.0, 0.1, stale)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow(31.0) == Reject(BreakerState.HALF_OPEN, None)
    assert all(isinstance(t, Admit) for t in trials)


def test_release_gives_a_trial_slot_back() -> None:
    """A trial that ended without a verdict (cancelled) frees its slot."""
    breaker = open_breaker()
    trials = [breaker.allow(30.0) for _ in range(3)]
    assert isinstance(trials[0], Admit)
    breaker.release(trials[0])
    assert isinstance(breaker.allow(30.0), Admit)


def test_release_while_closed_changes_nothing() -> None:
    """Releasing a closed-state admission is a no-op."""
    breaker = CircuitBreaker(NO_JITTER)
    breaker.release(admit(breaker))
    assert state_of(breaker) is BreakerState.CLOSED and breaker.failure_stats == (0, 0, 0)


def test_late_results_while_open_change_nothing() -> None:
    """Results arriving while the breaker is open are not counted."""
    breaker = open_breaker()
    breaker.on_failure(1.0, 0.1)
    breaker.on_success(1.0, 0.1)
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.open_until == 30.0


SLOW = BreakerConfig(
    consecutive_failures=100,
    slow_call_duration=2.0,
    slow_call_ratio=0.5,
    minimum_calls=4,
    open_jitter=0.0,
)


def test_slow_call_ratio_opens_the_breaker() -> None:
    """Half the calls slower than 2 s over >= 4 calls open it, though all succeeded."""
    breaker = CircuitBreaker(SLOW)
    for duration in (0.1, 3.0, 0.1):
        breaker.on_success(0.0, duration, admit(breaker))
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.on_success(0.0, 2.5, admit(breaker))
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.failure_stats == (4, 0, 2)


def test_a_slow_trial_reopens() -> None:
    """In half-open, a successful but slow trial counts as a failed one."""
    breaker = CircuitBreaker(SLOW)
    for _ in range(4):
        breaker.on_success(0.0, 5.0, admit(breaker))
    assert state_of(breaker) is BreakerState.OPEN
    trial = breaker.allow(30.0)
    assert isinstance(trial, Admit)
    breaker.on_success(30.0, 5.0, trial)
    assert state_of(breaker) is BreakerState.OPEN


def test_slow_detection_needs_both_settings() -> None:
    """A slow_call_duration without a ratio records nothing as slow."""
    config = BreakerConfig(slow_call_duration=1.0, minimum_calls=1)
    breaker = CircuitBreaker(config)
    breaker.on_success(0.0, 9.0, admit(breaker))
    assert breaker.failure_stats == (1, 0, 0)
    assert state_of(breaker) is BreakerState.CLOSED


def test_force_open_rejects_until_reset() -> None:
    """force_open refuses everything, with no retry_after, until reset()."""
    breaker = CircuitBreaker(NO_JITTER)
    breaker.force_open()
    assert breaker.allow(1e9) == Reject(BreakerState.FORCED_OPEN, None)
    assert breaker.is_manual
    breaker.reset()
    assert isinstance(breaker.allow(0.0), Admit)


def test_force_closed_counts_but_never_trips() -> None:
    """force_closed admits everything and keeps metrics without opening."""
    breaker = CircuitBreaker(NO_JITTER)
    breaker.force_closed()
    fail_n(breaker, 50)
    assert state_of(breaker) is BreakerState.FORCED_CLOSED
    assert breaker.failure_stats == (50, 50, 0)


def test_disable_admits_and_records_nothing() -> None:
    """A disabled breaker lets every call through and counts nothing."""
    breaker = CircuitBreaker(NO_JITTER)
    breaker.disable()
    fail_n(breaker, 50)
    assert state_of(breaker) is BreakerState.DISABLED
    assert breaker.failure_stats == (0, 0, 0)


def test_reset_clears_the_growth_of_the_open_time() -> None:
    """After reset() the next opening lasts the base open time again."""
    breaker = open_breaker()
    breaker.on_failure(30.0, 0.1, admit(breaker, 30.0))
    breaker.reset(100.0)
    fail_n(breaker, 5, now=100.0)
    assert breaker.open_until == 130.0


def test_state_changes_emit_frozen_events() -> None:
    """Every transition reaches the hooks with key, states, reason and open time."""
    events: list[ResilienceEvent] = []
    breaker = CircuitBreaker(NO_JITTER, key="api", hooks=[events.append])
    fail_n(breaker, 5, now=1.0)
    breaker.allow(31.0)
    opened, half_opened = events
    assert opened == BreakerStateChanged(
        "api", "closed", "open", "5 consecutive host-down failures", 1.0, 30.0
    )
    assert isinstance(half_opened, BreakerStateChanged)
    assert (half_opened.old, half_opened.new, half_opened.open_for) == ("open", "half_open", None)
    with pytest.raises(AttributeError):
        opened.key = "x"  # type: ignore[misc]


def test_repr_shows_state_and_counters() -> None:
    """The repr names the key, state and window counters."""
    breaker = CircuitBreaker(NO_JITTER, key="api")
    fail_n(breaker, 2)
    assert repr(breaker) == (
        "<CircuitBreaker 'api' [closed | calls=2 failures=2 slow=0 consecutive=2]>"
    )


def test_a_ratio_below_the_threshold_keeps_it_closed() -> None:
    """Enough calls but only 40 % failures: the breaker stays closed."""
    config = BreakerConfig(consecutive_failures=100, open_jitter=0.0)
    breaker = CircuitBreaker(config)
    for i in range(10):
        if i % 5 >= 3:  # the last call is a failure, so the ratio is checked at 4/10
            fail_n(breaker, 1, now=float(i))
        else:
            succeed_n(breaker, 1, now=float(i))
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.failure_stats == (10, 4, 0)


def test_open_duration_growth_cannot_overflow() -> None:
    """After very many openings the open time stays at the cap instead of overflowing."""
    config = BreakerConfig(
        consecutive_failures=1,
        open_duration=1.0,
        open_duration_max=50.0,
        open_duration_multiplier=1000.0,
        open_jitter=0.0,
    )
    breaker = CircuitBreaker(config)
    fail_n(breaker, 1)
    for _ in range(120):
        now = breaker.open_until
        trial = breaker.allow(now)
        assert isinstance(trial, Admit)
        breaker.on_failure(now, 0.1, trial)
    assert breaker.open_until - now == 50.0


def test_a_clock_gone_back_does_not_stretch_the_open_time() -> None:
    """Opened at t=1000 for 30 s, asked at t=0: it half-opens 30 s later, not 1030 s."""
    breaker = CircuitBreaker(NO_JITTER)
    for _ in range(5):
        breaker.on_failure(1000.0, 0.1, admit(breaker, 1000.0))
    assert state_of(breaker) is BreakerState.OPEN
    verdict = breaker.allow(0.0)
    assert isinstance(verdict, Reject)
    assert verdict.retry_after == 30.0
    assert isinstance(breaker.allow(29.0), Reject)
    assert isinstance(breaker.allow(30.0), Admit)
    assert state_of(breaker) is BreakerState.HALF_OPEN
