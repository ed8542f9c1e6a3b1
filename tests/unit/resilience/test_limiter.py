"""RateLimiter: per-host GCRA that waits within the deadline, fair and adaptive."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode, RateLimitConfig
from flext_api.resilience import (
    RateLimiter,
    RateLimitThrottled,
    RateLimitWaited,
    RedisRateLimiter,
    ResilienceEvent,
)
from flext_api.testing import FakeClock


async def settle() -> None:
    """Let woken tasks run until they block again."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_first_call_passes_then_one_per_interval() -> None:
    """At 2/s with burst 1 the calls wait 0, 0.5, 0.5 s."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=2.0, clock=clock)
    waits = [(await limiter.acquire("h")).value for _ in range(3)]
    assert waits == [0.0, 0.5, 0.5]
    assert clock.sleeps == [0.5, 0.5]


def test_no_burst_beyond_burst() -> None:
    """burst=3: three slots at once, then exactly one per interval."""
    limiter = RateLimiter(rate=10.0, burst=3, clock=FakeClock(start=0.0))
    waits = [limiter.reserve("h", 0.0) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_burst_is_restored_after_idle() -> None:
    """After a quiet period the burst is available again, never more."""
    limiter = RateLimiter(rate=10.0, burst=2)
    for _ in range(4):
        limiter.reserve("h", 0.0)
    waits = [limiter.reserve("h", 100.0) for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.0, 0.1])


def test_keys_are_independent() -> None:
    """Each host has its own schedule."""
    limiter = RateLimiter(rate=1.0)
    assert limiter.reserve("a", 0.0) == 0.0
    assert limiter.reserve("b", 0.0) == 0.0
    assert limiter.reserve("a", 0.0) == 1.0


async def test_thousands_of_waiters_are_served_in_order_without_herding() -> None:
    """2000 waiters each sleep once until their own slot and finish in arrival order."""
    clock = FakeClock(start=0.0, auto_advance=False)
    limiter = RateLimiter(rate=100.0, clock=clock)
    done: list[int] = []

    async def caller(i: int) -> None:
        result = await limiter.acquire("h")
        assert result.is_success
        done.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(2000)]
    await settle()
    assert done == [0]
    assert limiter.waiting("h") == 1999
    for step in range(1, 20):
        clock.advance(0.01)
        await settle()
        assert done == list(range(step + 1))  # exactly one more per interval
    clock.advance(100.0)
    await asyncio.gather(*tasks)
    assert done == list(range(2000))
    assert len(clock.sleeps) == 1999  # one sleep per waiter: nobody woken for nothing


async def test_a_slot_past_the_deadline_fails_fast_without_reserving() -> None:
    """A wait beyond the deadline is RATE_LIMITED with retry_after; the slot stays free."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=1.0, clock=clock)
    await limiter.acquire("h")
    refused = await limiter.acquire("h", deadline=0.5)
    assert refused.error_code is ErrorCode.RATE_LIMITED
    assert refused.exception is not None
    assert refused.exception.retry_after == 1.0
    assert "deadline leaves 0.5s" in (refused.error or "")
    assert limiter.reserve("h", 0.0) == 1.0  # nothing was reserved by the refusal


async def test_a_free_slot_is_taken_even_when_the_deadline_has_passed() -> None:
    """A caller whose deadline is already behind it but who needs no wait gets the slot
    and uses it up: it used to pass without reserving anything (``-0.0`` read as a
    grant), so every late caller went through and the rate was not kept."""
    clock = FakeClock(start=10.0, auto_advance=False)
    limiter = RateLimiter(rate=1.0, clock=clock)
    late = await limiter.acquire("h", deadline=9.0)
    assert late.is_success
    assert late.value == 0.0
    assert limiter.reserve("h", 10.0, max_wait=0.5) is None  # the slot is taken
    again = await limiter.acquire("h", deadline=9.0)
    assert again.error_code is ErrorCode.RATE_LIMITED
    assert again.exception is not None
    assert again.exception.retry_after == 1.0
    assert "deadline leaves 0s" in (again.error or "")
    assert limiter.reserve("k", 10.0, max_wait=-1.0) == 0.0
    assert limiter.reserve("k", 10.0, max_wait=-1.0) is None


async def test_a_429_halves_the_rate_and_it_recovers() -> None:
    """throttled=True halves the rate; it climbs back linearly over `recovery` seconds."""
    limiter = RateLimiter(rate=10.0, recovery=30.0)
    limiter.feedback("h", 0.0, throttled=True)
    assert limiter.rate_factor("h", 0.0) == 0.5
    assert limiter.reserve("h", 0.0) == 0.0
    assert limiter.reserve("h", 0.0) == pytest.approx(0.2)  # interval doubled
    assert limiter.rate_factor("h", 6.0) == pytest.approx(0.7)
    assert limiter.rate_factor("h", 15.0) == 1.0
    assert limiter.rate_factor("other", 0.0) == 1.0


def test_repeated_429s_stop_at_the_floor() -> None:
    """The rate never drops below min_factor of the configured rate."""
    limiter = RateLimiter(rate=10.0, min_factor=0.25)
    for _ in range(10):
        limiter.feedback("h", 0.0, throttled=True)
    assert limiter.rate_factor("h", 0.0) == 0.25


async def test_retry_after_pauses_the_key() -> None:
    """A Retry-After hint hands out no slot before it has passed."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=10.0, clock=clock)
    limiter.feedback("h", 0.0, retry_after=5.0)
    assert (await limiter.acquire("h")).value == 5.0


async def test_a_pause_moves_sleeping_waiters_back_in_order() -> None:
    """Callers asleep when a pause starts wake after it, still in FIFO order."""
    clock = FakeClock(start=0.0, auto_advance=False)
    limiter = RateLimiter(rate=10.0, clock=clock)
    done: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await limiter.acquire("h")
        done.append((i, clock.monotonic()))

    tasks = [asyncio.create_task(caller(i)) for i in range(3)]
    await settle()
    clock.advance(0.05)
    limiter.feedback("h", 0.05, retry_after=5.0)
    for _ in range(60):
        clock.advance(0.1)
        await settle()
    await asyncio.gather(*tasks)
    assert [i for i, _ in done] == [0, 1, 2]
    assert done[1][1] >= 5.05 and done[2][1] >= done[1][1]


async def test_a_pause_past_the_deadline_fails_a_sleeper() -> None:
    """A sleeper pushed past its deadline by a pause gets RATE_LIMITED, freeing its slot."""
    clock = FakeClock(start=0.0, auto_advance=False)
    limiter = RateLimiter(rate=10.0, clock=clock)
    await limiter.acquire("h")
    waiter = asyncio.create_task(limiter.acquire("h", deadline=1.0))
    await settle()
    limiter.feedback("h", 0.0, retry_after=5.0)
    clock.advance(0.2)
    result = await waiter
    assert result.error_code is ErrorCode.RATE_LIMITED
    # It was last in line, so its (moved) slot at 5.1 s is free again.
    assert limiter.reserve("h", 0.2) == pytest.approx(4.9)


async def test_a_cancelled_last_waiter_gives_its_slot_back() -> None:
    """Cancelling the newest waiter frees its slot for the next caller."""
    clock = FakeClock(start=0.0, auto_advance=False)
    limiter = RateLimiter(rate=1.0, clock=clock)
    await limiter.acquire("h")
    waiter = asyncio.create_task(limiter.acquire("h"))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting("h") == 0
    assert limiter.reserve("h", 0.0) == 1.0


def test_feedback_is_ignored_when_not_adaptive() -> None:
    """adaptive=False keeps the configured rate whatever the server says."""
    limiter = RateLimiter(rate=10.0, adaptive=False)
    limiter.feedback("h", 0.0, throttled=True, retry_after=9.0)
    assert limiter.rate_factor("h", 0.0) == 1.0
    assert limiter.reserve("h", 0.0) == 0.0


async def test_events_report_waits_and_throttling() -> None:
    """Hooks receive RateLimitWaited and RateLimitThrottled."""
    events: list[ResilienceEvent] = []
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=2.0, clock=clock, hooks=[events.append])
    await limiter.acquire("h")
    await limiter.acquire("h")
    await limiter.afeedback("h", 1.0, throttled=True, retry_after=2.0, reason="HTTP 429")
    assert events == [
        RateLimitWaited("h", 0.5),
        RateLimitThrottled("h", 2.0, 0.5, "HTTP 429"),
    ]


def test_from_config_and_repr() -> None:
    """from_config copies rate, burst and adaptivity; the repr shows them."""
    limiter = RateLimiter.from_config(RateLimitConfig(rate=5.0, burst=2, adaptive=False))
    assert (limiter.rate, limiter.burst, limiter.adaptive) == (5.0, 2, False)
    assert repr(limiter) == "<RateLimiter 5/s burst=2 [0 keys, 0 waiting]>"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0},
        {"rate": float("inf")},
        {"burst": 0},
        {"min_factor": 0.0},
        {"recovery": 0.0},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    """Impossible rates, bursts and adaptivity settings are ValueErrors."""
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [1e-320, 1e-308])
def test_a_rate_whose_interval_overflows_is_rejected(rate: float) -> None:
    """A rate so small that 1/rate (or 1/(rate x min_factor) after a 429) is infinite
    made the slot arithmetic NaN (0 x inf) and let every call through at once: the
    opposite of a limit. It is a ValueError now."""
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=rate)


def test_a_shorter_pause_does_not_cut_a_longer_one() -> None:
    """A second, shorter Retry-After leaves the longer pause in force."""
    limiter = RateLimiter(rate=10.0)
    limiter.feedback("h", 0.0, retry_after=5.0)
    limiter.feedback("h", 1.0, retry_after=1.0)
    assert limiter.reserve("h", 1.0) == 4.0


async def test_a_cancelled_waiter_in_the_middle_leaves_a_hole() -> None:
    """Cancelling a waiter with others queued behind it keeps their slots unchanged."""
    clock = FakeClock(start=0.0, auto_advance=False)
    limiter = RateLimiter(rate=1.0, clock=clock)
    await limiter.acquire("h")
    middle = asyncio.create_task(limiter.acquire("h"))
    last = asyncio.create_task(limiter.acquire("h"))
    await settle()
    middle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await middle
    assert limiter.reserve("h", 0.0) == 3.0
    clock.advance(2.0)
    assert (await last).value == 2.0


async def test_idle_keys_are_evicted() -> None:
    """A host with no waiters is forgotten after idle_eviction seconds."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=10.0, idle_eviction=60.0, clock=clock)
    await limiter.acquire("old")
    clock.advance(100.0)
    await limiter.acquire("new")
    assert repr(limiter) == "<RateLimiter 10/s burst=1 [1 keys, 0 waiting]>"


@pytest.mark.parametrize("hint", [float("inf"), 10 * 365 * 86400.0, 1e300])
async def test_a_huge_pause_is_capped_at_max_pause(hint: float) -> None:
    """A far-future Retry-After pauses the key for max_pause seconds, never for years."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(rate=10.0, clock=clock)
    limiter.feedback("h", 0.0, retry_after=hint)
    assert limiter.reserve("h", 0.0) == 60.0
    capped = RateLimiter(rate=10.0, max_pause=2.0, clock=clock)
    capped.feedback("h", 0.0, retry_after=hint)
    assert (await capped.acquire("h")).value == 2.0


def test_max_pause_comes_from_the_config() -> None:
    """``RateLimitConfig.max_pause`` reaches the limiter a client builds from it."""
    clock = FakeClock(start=0.0)
    limiter = RateLimiter.from_config(RateLimitConfig(enabled=True, max_pause=5.0), clock=clock)
    limiter.feedback("h", 0.0, retry_after=3600.0)
    assert limiter.reserve("h", 0.0) == 5.0
    assert RateLimiter.from_config(RateLimitConfig()).max_pause == 60.0
    shared = RateLimitConfig(redis_url="redis://127.0.0.1:6379/0", max_pause=5.0)
    assert RedisRateLimiter.from_config(shared).local.max_pause == 5.0  # no connection yet
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_pause"):
            RateLimitConfig(max_pause=bad)


def test_a_nan_pause_pauses_nothing() -> None:
    """A NaN hint is no hint: the next slot is free at once."""
    limiter = RateLimiter(rate=10.0)
    limiter.feedback("h", 0.0, retry_after=float("nan"))
    assert limiter.reserve("h", 0.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recovery": float("nan")},
        {"recovery": float("inf")},
        {"max_pause": -1.0},
        {"max_pause": float("nan")},
        {"max_pause": float("inf")},
    ],
)
def test_non_finite_adaptivity_settings_are_rejected(kwargs: dict[str, float]) -> None:
    """NaN or infinite recovery and pause bounds are ValueErrors, not silent NaN rates."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RateLimiter(**kwargs)  # type: ignore[arg-type]
