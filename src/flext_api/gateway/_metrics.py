"""Prometheus series of the gateway, labelled by route name and cluster, never by raw path.

Label values come from the config (route and cluster names), the status class and the
typed reason, so the number of series is bounded by the config, whatever clients send;
a request that matches no route counts under ``route="<unmatched>"``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["UNMATCHED", "GatewayMetrics"]

UNMATCHED = "<unmatched>"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The gateway's own registry (several gateways in one process never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "Requests handled, by route, cluster, status class and gateway reason.",
            ["route", "cluster", "status_class", "reason"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "Time from the first attempt to the end of the upstream response.",
            ["route", "cluster"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_ttfb = Histogram(
            "gateway_upstream_ttfb_seconds",
            "Time from sending to an upstream to receiving its response head.",
            ["route", "cluster"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "gateway_upstream_retries",
            "Attempts beyond the first, by route and cluster.",
            ["route", "cluster"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Requests being proxied now.", registry=self.registry
        )
        self.websockets = Gauge(
            "gateway_websockets_open",
            "WebSocket sessions being proxied now.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "gateway_config_reloads",
            "Config reloads, by outcome (applied or refused).",
            ["outcome"],
            registry=self.registry,
        )
        # The value cells of one label set, looked up once (labels() costs ~3 us a call);
        # bounded like the series: route and cluster names, status classes, reasons.
        self._series: dict[tuple[str, str, int, str], _Cells] = {}

    def observe(
        self,
        route: str,
        cluster: str,
        status: int,
        reason: str,
        *,
        ttfb: float | None,
        upstream_time: float | None,
        attempts: int,
    ) -> None:
        """Record one finished request."""
        key = (route, cluster, status // 100, reason)
        cells = self._series.get(key)
        if cells is None:
            cells = self._series[key] = _Cells(
                self.requests.labels(route, cluster, f"{status // 100}xx", reason),
                self.upstream_ttfb.labels(route, cluster),
                self.upstream_latency.labels(route, cluster),
            )
        cells.requests.inc(1)
        if ttfb is not None:
            cells.ttfb_sum.inc(ttfb)
            cells.ttfb_buckets[bisect_left(cells.ttfb_bounds, ttfb)].inc(1)
        if upstream_time is not None:
            cells.latency_sum.inc(upstream_time)
            cells.latency_buckets[bisect_left(cells.latency_bounds, upstream_time)].inc(1)
        if attempts > 1:
            self.retries.labels(route, cluster).inc(attempts - 1)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


class _Cells:
    """The value cells behind one label set's counter and two histograms.

    ``Counter.inc`` and ``Histogram.observe`` check, per call, what is settled once the
    child exists (observable, amount not negative) and walk the buckets in Python; on
    the path of every proxied request the cells are bumped directly: the same sums and
    buckets (the first bound ``>=`` the amount, as ``observe`` picks), with each cell's
    own locking, whatever its value class (multiprocess mode included).
    """

    __slots__ = (
        "latency_bounds",
        "latency_buckets",
        "latency_sum",
        "requests",
        "ttfb_bounds",
        "ttfb_buckets",
        "ttfb_sum",
    )

    def __init__(self, requests: Any, ttfb: Any, latency: Any) -> None:
        self.requests = requests._value
        self.ttfb_bounds: list[float] = ttfb._upper_bounds  # the last one is +Inf
        self.ttfb_sum = ttfb._sum
        self.ttfb_buckets: list[Any] = ttfb._buckets
        self.latency_bounds: list[float] = latency._upper_bounds
        self.latency_sum = latency._sum
        self.latency_buckets: list[Any] = latency._buckets
