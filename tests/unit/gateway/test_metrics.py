"""The gateway's request series: the direct cell updates match prometheus-client's own."""

from __future__ import annotations

import re

from flext_api.gateway._metrics import GatewayMetrics

_CREATED = re.compile(rb".*_created.*\n")


def test_observe_writes_what_counter_and_histogram_would() -> None:
    """Counts, sums and buckets (bounds and +Inf included) equal the official calls'."""
    fast, reference = GatewayMetrics(), GatewayMetrics()
    for amount in (0.0, 0.001, 0.0010001, 0.3, 2.5, 30.0, 31.0, 1e9):
        fast.observe("r", "c", 200, "", ttfb=amount, upstream_time=amount * 2, attempts=2)
        reference.requests.labels("r", "c", "2xx", "").inc()
        reference.upstream_ttfb.labels("r", "c").observe(amount)
        reference.upstream_latency.labels("r", "c").observe(amount * 2)
        reference.retries.labels("r", "c").inc(1)
    fast.observe("r", "c", 502, "connect_failure", ttfb=None, upstream_time=None, attempts=1)
    reference.requests.labels("r", "c", "5xx", "connect_failure").inc()
    assert _CREATED.sub(b"", fast.render()) == _CREATED.sub(b"", reference.render())
