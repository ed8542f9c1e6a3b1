"""MetricsPlugin under hostile use: many servers, failing plugins, shared registries."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from flext_api import HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client.observability import MetricsPlugin
from flext_api.client.observability._metrics import DEFAULT_BUCKETS
from flext_api.client.plugins import BulkheadPlugin
from flext_api.transports._mock import MockTransport


def _raising_key(request: HttpRequest) -> str:
    raise KeyError("tenant")


def _refused(request: HttpRequest) -> HttpResponse:
    raise ConnectionRefusedError("refused")


def _sample(plugin: MetricsPlugin, name: str, **labels: str) -> float | None:
    return plugin.registry.get_sample_value(name, labels)


async def test_a_plugin_that_raises_is_timed_as_plugin_error() -> None:
    """A call ended by a plugin raising is observed (PLUGIN_ERROR), and leaves no call active."""
    metrics = MetricsPlugin()
    client = FlextApiClient(
        "http://h.test",
        transport=MockTransport(lambda r: HttpResponse(200)),
        plugins=[metrics, BulkheadPlugin(key=_raising_key)],
        default_plugins=False,
    )
    result = await client.get("/x")
    assert result.exception is not None
    labels = {"http_request_method": "GET", "server_address": "h.test:80"}
    assert (
        _sample(
            metrics,
            "http_client_request_duration_seconds_count",
            **labels,
            status_class="none",
            error_type="PLUGIN_ERROR",
        )
        == 1.0
    )
    assert _sample(metrics, "http_client_active_requests", **labels) == 0.0


async def test_ten_thousand_servers_keep_the_server_label_bounded() -> None:
    """Calls to 10,000 hosts (user-supplied webhooks) give max_servers values plus _OTHER."""
    metrics = MetricsPlugin(max_servers=50)
    client = FlextApiClient(
        transport=MockTransport(lambda r: HttpResponse(200)),
        plugins=[metrics],
        default_plugins=False,
    )
    for i in range(10_000):
        await client.get(f"http://hook-{i}.test/cb?id={i}")
    values = metrics.label_values("server_address")
    assert len(values) == 51
    assert "_OTHER" in values
    assert (
        _sample(
            metrics,
            "http_client_request_duration_seconds_count",
            http_request_method="GET",
            server_address="_OTHER",
            status_class="2xx",
            error_type="",
        )
        == 9_950
    )


async def test_a_transport_error_has_status_class_none_and_its_code() -> None:
    """No response: status_class "none", error_type the transport's ErrorCode."""
    metrics = MetricsPlugin()
    client = FlextApiClient(
        "http://h.test", transport=MockTransport(_refused), plugins=[metrics], default_plugins=False
    )
    result = await client.get("/x")
    assert result.exception is not None
    code = result.exception.code.value
    assert (
        _sample(
            metrics,
            "http_client_request_duration_seconds_count",
            http_request_method="GET",
            server_address="h.test:80",
            status_class="none",
            error_type=code,
        )
        == 1.0
    )


def test_buckets_are_otels_http_advice() -> None:
    """Default buckets: OTel's http.client.request.duration advice, 5 ms to 10 s."""
    assert DEFAULT_BUCKETS[0] == 0.005
    assert DEFAULT_BUCKETS[-1] == 10.0
    assert list(DEFAULT_BUCKETS) == sorted(set(DEFAULT_BUCKETS))


def test_two_plugins_with_their_own_registries_coexist_in_one_process() -> None:
    """Two plugins, each on a given registry, both expose their series."""
    first, second = CollectorRegistry(), CollectorRegistry()
    a, b = MetricsPlugin(first), MetricsPlugin(second)
    assert a.registry is first
    assert b.registry is second
    assert b"http_client_request_duration_seconds" in a.exposition()
    assert b"http_client_request_duration_seconds" in b.exposition()


def test_a_registry_holding_the_series_is_refused_with_a_clear_error() -> None:
    """A second plugin on the same registry raises ValueError naming the fix."""
    registry = CollectorRegistry()
    MetricsPlugin(registry)
    with pytest.raises(ValueError, match="share one MetricsPlugin"):
        MetricsPlugin(registry)
