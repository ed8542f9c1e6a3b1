"""Metrics after a fault-matrix run against the fault server; bounded label values."""

from __future__ import annotations

import re

import pytest

from flext_api import BreakerConfig, ErrorCode, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.client.observability import MetricsPlugin
from flext_api.client.plugins import CircuitBreakerPlugin, RetryPlugin
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


def _client(fault: FaultServer, metrics: MetricsPlugin) -> FlextApiClient:
    clock = FakeClock()
    retry = RetryPlugin(RetryConfig(max_retries=2, budget_ratio=None), clock=clock)
    breaker = CircuitBreakerPlugin(BreakerConfig(consecutive_failures=4), clock=clock)
    return FlextApiClient(fault.url, plugins=[metrics, retry, breaker], default_plugins=False)


def _sample(exposition: str, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    values = []
    for line in exposition.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            values.append(float(match.group(2)))
    assert len(values) == 1, (name, labels, values)
    return values[0]


async def test_fault_matrix_shows_retry_and_breaker_series(fault: FaultServer) -> None:
    """Flaky, failing and dropped calls: non-zero retry, breaker and error series."""
    metrics = MetricsPlugin()
    async with _client(fault, metrics) as client:
        metrics.watch(client, "upstream")
        assert (await client.get("/flaky/m1/2/503")).is_success  # 2 retries, then 200
        assert (await client.get("/status/404")).error_code is ErrorCode.HTTP_STATUS
        exhausted = await client.get("/status/502")  # 3 attempts: 3 host-down failures
        assert exhausted.error_code is ErrorCode.RETRIES_EXHAUSTED
        # The 4th host-down failure in a row opens the breaker; the retry is then refused.
        assert (await client.get("/drop")).error_code is ErrorCode.CIRCUIT_OPEN
        refused = await client.get("/status/200")
        assert refused.error_code is ErrorCode.CIRCUIT_OPEN
        text = metrics.exposition().decode()
    server = f"127.0.0.1:{fault.port}"
    assert _sample(text, "http_client_retries_total", server_address=server) >= 4
    assert _sample(text, "http_client_circuit_breaker_state", server_address=server,
                   state="open") == 1  # fmt: skip
    transitions = _sample(text, "http_client_circuit_breaker_transitions_total",
                          from_state="closed", to_state="open")  # fmt: skip
    assert transitions == 1
    duration = "http_client_request_duration_seconds_count"
    assert _sample(text, duration, status_class="2xx", error_type="") == 1
    assert _sample(text, duration, status_class="4xx", error_type="HTTP_STATUS") == 1
    assert _sample(text, duration, status_class="none", error_type="CIRCUIT_OPEN") == 2
    assert _sample(text, "http_client_pool_max_connections", client="upstream") == 100
    assert f'server_address="{server}"' in text


async def test_thousand_distinct_paths_add_no_label_values(fault: FaultServer) -> None:
    """1,000 requests to distinct paths leave every label's value set unchanged."""
    metrics = MetricsPlugin()
    labels = ("http_request_method", "server_address", "status_class", "error_type")
    async with FlextApiClient(fault.url, plugins=[metrics], default_plugins=False) as client:
        await client.get("/cache/warm-0")
        before = {label: metrics.label_values(label) for label in labels}
        for i in range(1, 1000):
            assert (await client.get(f"/cache/warm-{i}", params={"v": i})).is_success
    assert {label: metrics.label_values(label) for label in labels} == before
    assert b"warm-" not in metrics.exposition()
