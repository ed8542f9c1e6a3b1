"""Per-route time series for the dashboard: req/s, error ratio and p99 over recent minutes.

One bucket per second per route, kept for ``horizon`` seconds; each bucket counts
requests and 5xx answers and keeps up to ``samples`` latencies (a uniform prefix is
enough for a p99 on a chart, and bounds memory whatever the load). Route names come
from the config, so the number of series is bounded too.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RouteSeries", "Series"]


@dataclass(slots=True)
class _Bucket:
    second: int
    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


class Series:
    """The buckets of one route."""

    __slots__ = ("_buckets", "horizon", "samples")

    def __init__(self, horizon: int = 300, samples: int = 256) -> None:
        self.horizon = horizon
        self.samples = samples
        self._buckets: deque[_Bucket] = deque()

    def record(self, now: float, status: int, latency: float) -> None:
        """Count one finished request."""
        second = int(now)
        buckets = self._buckets
        if not buckets or buckets[-1].second != second:
            if buckets and buckets[-1].second > second:
                # The wall clock was set back: the buckets "ahead" of it would be counted
                # in every window and never age out until the clock caught up with them
                # (a day set back: a day of buckets). Start again from now.
                buckets.clear()
            buckets.append(_Bucket(second))
            while buckets and buckets[0].second <= second - self.horizon:
                buckets.popleft()
        bucket = buckets[-1]
        bucket.count += 1
        if status >= 500:
            bucket.errors += 1
        if len(bucket.latencies) < self.samples:
            bucket.latencies.append(latency)

    def idle_since(self, now: float) -> bool:
        """True when nothing was recorded within ``horizon`` seconds of ``now``."""
        buckets = self._buckets
        return not buckets or buckets[-1].second <= int(now) - self.horizon

    def points(self, now: float, seconds: int) -> list[dict[str, Any]]:
        """One point per second for the last ``seconds`` (empty seconds included)."""
        end = int(now)
        by_second = {b.second: b for b in self._buckets}
        out = []
        for second in range(end - seconds + 1, end + 1):
            b = by_second.get(second)
            if b is None:
                out.append({"t": second, "rps": 0, "errors": 0.0, "p99": None})
                continue
            out.append(
                {
                    "t": second,
                    "rps": b.count,
                    "errors": b.errors / b.count,
                    "p99": _p99(b.latencies),
                }
            )
        return out

    def totals(self, now: float, seconds: int) -> dict[str, Any]:
        """req/s, error ratio and p99 over the last ``seconds``."""
        start = int(now) - seconds
        chosen = [b for b in self._buckets if b.second > start]
        count = sum(b.count for b in chosen)
        errors = sum(b.errors for b in chosen)
        latencies = [x for b in chosen for x in b.latencies]
        return {
            "rps": count / seconds,
            "error_ratio": errors / count if count else 0.0,
            "p99": _p99(latencies),
        }


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class RouteSeries:
    """A :class:`Series` per route name.

    A route renamed or removed by a reload leaves its series behind; when a new name
    comes, the series with nothing in their horizon are dropped, so reloads that keep
    changing names do not grow this without bound.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Series] = {}

    def record(self, route: str, now: float, status: int, latency: float) -> None:
        """Count one finished request of ``route``."""
        series = self.routes.get(route)
        if series is None:
            for name in [n for n, s in self.routes.items() if s.idle_since(now)]:
                del self.routes[name]
            series = self.routes[route] = Series()
        series.record(now, status, latency)
