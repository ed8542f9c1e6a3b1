"""SlidingWindow: counters over the last N seconds in time buckets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flext_api.resilience._window import SlidingWindow


def test_counts_within_the_window() -> None:
    """Events inside the window are summed per field."""
    window = SlidingWindow(10.0, fields=2)
    window.add(0.0, 0)
    window.add(1.0, 0)
    window.add(2.0, 1, amount=3)
    assert window.totals(3.0) == [2, 3]
    assert window.total(3.0, 1) == 3


def test_old_buckets_expire() -> None:
    """An event leaves the window once its bucket is a full window old."""
    window = SlidingWindow(10.0, buckets=10)
    window.add(0.5)
    window.add(5.5)
    assert window.total(10.4) == 1  # the t=0.5 bucket [0, 1) expired at t=10
    assert window.total(16.0) == 0


def test_a_long_gap_clears_everything() -> None:
    """After more than a window of silence every bucket is empty."""
    window = SlidingWindow(1.0)
    for i in range(10):
        window.add(i / 10)
    assert window.total(1_000.0) == 0


def test_time_going_back_stays_in_the_newest_bucket() -> None:
    """A clock read older than the newest bucket is counted there, never lost."""
    window = SlidingWindow(10.0)
    window.add(5.0)
    window.add(4.0)
    assert window.total(5.0) == 2


def test_snapshot_and_clear() -> None:
    """snapshot() reads without expiring; clear() forgets everything."""
    window = SlidingWindow(10.0)
    window.add(0.0)
    assert window.snapshot() == [1]
    window.clear()
    assert window.totals(0.0) == [0]
    assert repr(window) == "<SlidingWindow 10s totals=[0]>"


@pytest.mark.parametrize(("window", "buckets", "fields"), [(0, 10, 1), (1, 0, 1), (1, 1, 0)])
def test_invalid_shapes_are_rejected(window: float, buckets: int, fields: int) -> None:
    """A non-positive window, bucket count or field count is a ValueError."""
    with pytest.raises(ValueError):
        SlidingWindow(window, buckets=buckets, fields=fields)


@given(st.lists(st.floats(0, 100), min_size=1, max_size=100))
def test_total_matches_a_naive_count(times: list[float]) -> None:
    """The running total equals a direct count of events in the covered buckets."""
    window = SlidingWindow(10.0, buckets=10)
    seen: list[float] = []
    for t in sorted(times):
        window.add(t)
        seen.append(t)
        newest = int(t // 1.0)
        expected = sum(1 for s in seen if int(s // 1.0) > newest - 10)
        assert window.total(t) == expected
