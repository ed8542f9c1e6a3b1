"""MemoryWindows: the same decisions as ``limits``' memory sliding-window counter."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from flext_api.gateway._ratelimit import MemoryWindows

_START = 1_800_000_000.0  # a multiple of every period below


class _Clock:
    def __init__(self) -> None:
        self.now = _START

    def __call__(self) -> float:
        return self.now


@settings(max_examples=150, deadline=None)
@given(
    limit=st.sampled_from(["1/second", "3/second", "5/minute", "2/10 seconds"]),
    # Steps in eighths of a second (exact in binary), up to two and a half minutes apart.
    steps=st.lists(st.integers(min_value=0, max_value=1200), min_size=1, max_size=40),
    keys=st.lists(st.sampled_from(["a", "b"]), min_size=40, max_size=40),
)
def test_same_decisions_as_limits(limit: str, steps: list[int], keys: list[str]) -> None:
    """Allowed, remaining and reset agree with limits for any sequence of hits."""
    item = parse(limit)
    period = item.get_expiry()
    clock = _Clock()
    ours = MemoryWindows(clock)
    theirs = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def run() -> None:
        mp = pytest.MonkeyPatch()
        mp.setattr("time.time", clock)
        try:
            for step, key in zip(steps, keys, strict=False):
                clock.now += step / 8
                decision = ours.hit("bucket/" + key, item.amount, period)
                allowed = await theirs.hit(item, "bucket", key)
                reset_at, remaining = await theirs.get_window_stats(item, "bucket", key)
                assert (decision.allowed, decision.remaining) == (allowed, remaining)
                assert math.isclose(decision.reset_after, reset_at - clock.now, abs_tol=1e-6)
                assert (decision.limit, decision.window) == (item.amount, period)
        finally:
            mp.undo()

    asyncio.run(run())


def test_limit_holds_and_the_window_slides() -> None:
    """3/second: three pass, the fourth waits; the previous second's hits weigh less later."""
    clock = _Clock()
    windows = MemoryWindows(clock)
    assert [windows.hit("k", 3, 1).allowed for _ in range(4)] == [True, True, True, False]
    refused = windows.hit("k", 3, 1)
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 1)
    clock.now += 1.5  # half into the next second: the three weigh 1.5
    assert windows.hit("k", 3, 1).remaining == 1  # floor(1.5 + 1) = 2 used
    assert windows.hit("k", 3, 1).remaining == 0  # floor(1.5 + 2) = 3 used
    assert windows.hit("k", 3, 1).allowed is False
    clock.now += 5  # long after: nothing weighs
    fresh = windows.hit("k", 3, 1)
    assert (fresh.allowed, fresh.remaining) == (True, 2)
    assert windows.hit("other", 3, 1).remaining == 2  # keys count apart


def test_ended_windows_are_swept_when_keys_double() -> None:
    """Keys of ended windows are dropped: memory follows the live keys, not every key seen."""
    clock = _Clock()
    windows = MemoryWindows(clock)
    for n in range(1000):
        windows.hit(f"old-{n}", 10, 1)
    clock.now += 10  # every old window has ended
    for n in range(1100):
        windows.hit(f"new-{n}", 10, 1)
    assert len(windows) == 1100  # the sweep at 1,024 keys dropped all 1,000 old ones
    assert windows.hit("new-0", 10, 1).remaining == 8  # live counts are kept


def test_a_clock_set_back_does_not_free_the_window() -> None:
    """Wall time stepping back (NTP) keeps the counts: no fresh burst."""
    clock = _Clock()
    windows = MemoryWindows(clock)
    assert [windows.hit("k", 2, 60).allowed for _ in range(3)] == [True, True, False]
    clock.now -= 120
    assert windows.hit("k", 2, 60).allowed is False
