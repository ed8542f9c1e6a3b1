"""Prometheus series of the gateway, labelled by route name and cluster, never by raw path.

Label values come from the config (route and cluster names), the status class and the
typed reason, so the number of series is bounded by the config, whatever clients send;
a request that matches no route counts under ``route="<unmatched>"``.
"""

from __future__ import annotations

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
        # The children of one label set, looked up once (labels() costs ~3 us a call);
        # bounded like the series: route and cluster names, status classes, reasons.
        self._series: dict[tuple[str, str, int, str], tuple[Any, Any, Any]] = {}

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
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(route, cluster, f"{status // 100}xx", reason),
                self.upstream_ttfb.labels(route, cluster),
                self.upstream_latency.labels(route, cluster),
            )
        series[0].inc()
        if ttfb is not None:
            series[1].observe(ttfb)
        if upstream_time is not None:
            series[2].observe(upstream_time)
        if attempts > 1:
            self.retries.labels(route, cluster).inc(attempts - 1)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
