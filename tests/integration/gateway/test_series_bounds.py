"""The dashboard's per-route series under a clock set back and reloads renaming routes."""

from __future__ import annotations

import pytest

from flext_api.gateway._series import RouteSeries, Series

pytestmark = pytest.mark.integration

DAY = 86_400.0


def test_a_clock_set_back_does_not_keep_buckets_from_the_future() -> None:
    """The wall clock set back a day: the figures are those of the new "now", and the
    buckets stay within the horizon (those "ahead" were kept, counted in every window
    and piled up until the clock caught up with them: a bucket per second for a day)."""
    series = Series(horizon=300)
    start = 10 * DAY
    for second in range(60):
        series.record(start + second, 500, 0.5)
    for second in range(600):
        series.record(start - DAY + second, 200, 0.01)
    now = start - DAY + 599
    assert series.totals(now, 60) == {"rps": 1.0, "error_ratio": 0.0, "p99": 0.01}
    assert len(series._buckets) <= 300


def test_series_of_routes_renamed_by_reloads_are_dropped_once_idle() -> None:
    """Each reload naming its routes anew leaves the old names' series behind: they are
    dropped once nothing was recorded for them within the horizon (they were kept for
    the life of the process, one per name ever seen)."""
    routes = RouteSeries()
    now = 1_000_000.0
    for generation in range(50):
        routes.record(f"route-{generation}", now, 200, 0.01)
        now += 301  # the next reload comes after the horizon
    assert set(routes.routes) == {"route-49"}
    routes.record("route-50", now - 100, 200, 0.01)  # route-49 still has recent data
    assert set(routes.routes) == {"route-49", "route-50"}
