"""MetricsPlugin: OTel-named Prometheus series with bounded labels."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from flext_api import (
    BreakerConfig,
    FlextResult,
    HttpRequest,
    HttpResponse,
    RateLimitConfig,
    RetryConfig,
)
from flext_api.client import CallNext, FlextApiClient
from flext_api.client.observability import MetricsPlugin
from flext_api.client.plugins import CircuitBreakerPlugin, RateLimitPlugin, RetryPlugin
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport

RETRY = RetryConfig(max_retries=2, budget_ratio=None, seed=1)


def _client(
    metrics: MetricsPlugin,
    handler: Callable[[HttpRequest], Any] = lambda r: HttpResponse(200),
    plugins: Sequence[object] = (),
    base_url: str = "http://api.test",
) -> FlextApiClient:
    return FlextApiClient(
        base_url,
        transport=MockTransport(handler),
        plugins=[metrics, *plugins],  # type: ignore[list-item]
        default_plugins=False,
    )


def _value(plugin: MetricsPlugin, name: str, **labels: str) -> float | None:
    return plugin.registry.get_sample_value(name, labels)


async def test_duration_histogram_labels_success() -> None:
    """A success is counted with method, host:port, 2xx and an empty error_type."""
    metrics = MetricsPlugin(clock=FakeClock())
    await _client(metrics).get("/x")
    labels = {"http_request_method": "GET", "server_address": "api.test:80",
              "status_class": "2xx", "error_type": ""}  # fmt: skip
    assert _value(metrics, "http_client_request_duration_seconds_count", **labels) == 1


async def test_duration_histogram_labels_failures() -> None:
    """An HTTP error keeps its status class; a transport error has none."""
    metrics = MetricsPlugin()

    def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/down"):
            raise ConnectionRefusedError("no")
        return HttpResponse(503)

    client = _client(metrics, handler, base_url="https://api.test")
    await client.get("/busy")
    await client.get("/down")
    base = {"http_request_method": "GET", "server_address": "api.test:443"}
    name = "http_client_request_duration_seconds_count"
    assert _value(metrics, name, **base, status_class="5xx", error_type="HTTP_STATUS") == 1
    assert _value(metrics, name, **base, status_class="none", error_type="CONNECT_ERROR") == 1


async def test_thousand_distinct_paths_add_no_label_values() -> None:
    """1,000 distinct paths and queries leave every label's value set unchanged."""
    metrics = MetricsPlugin()
    client = _client(metrics)
    await client.get("/items/0")
    labels = ("http_request_method", "server_address", "status_class", "error_type")
    before = {label: metrics.label_values(label) for label in labels}
    for i in range(1, 1000):
        await client.get(f"/items/{i}", params={"q": i})
    assert {label: metrics.label_values(label) for label in labels} == before
    assert b"/items/" not in metrics.exposition()


async def test_unknown_method_is_other() -> None:
    """A method outside the known set is labelled _OTHER."""
    metrics = MetricsPlugin()
    await _client(metrics).request("PURGE", "/x")
    assert metrics.label_values("http_request_method") == {"_OTHER"}


async def test_servers_past_the_cap_share_other() -> None:
    """Past max_servers distinct servers, new ones are labelled _OTHER."""
    metrics = MetricsPlugin(max_servers=2)
    client = _client(metrics)
    for host in ("a.test", "b.test", "c.test:8080", "d.test"):
        await client.get(f"http://{host}/x")
    assert metrics.label_values("server_address") == {"a.test:80", "b.test:80", "_OTHER"}
    assert repr(metrics) == "<MetricsPlugin servers=2/2>"


async def test_active_requests_gauge_counts_calls_in_flight() -> None:
    """The in-flight gauge is 1 during the call and 0 after."""
    metrics = MetricsPlugin()
    seen: list[float | None] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(_value(metrics, "http_client_active_requests",
                           http_request_method="GET", server_address="api.test:80"))  # fmt: skip
        return HttpResponse(200)

    await _client(metrics, handler).get("/x")
    assert seen == [1.0]
    labels = {"http_request_method": "GET", "server_address": "api.test:80"}
    assert _value(metrics, "http_client_active_requests", **labels) == 0.0


async def test_retries_are_counted() -> None:
    """Each retry the retry stage schedules increments the counter."""
    metrics = MetricsPlugin()
    codes = iter([503, 503, 200])
    clock = FakeClock()
    client = _client(
        metrics, lambda r: HttpResponse(next(codes)), [RetryPlugin(RETRY, clock=clock)]
    )
    assert (await client.get("/x")).is_success
    labels = {"http_request_method": "GET", "server_address": "api.test:80"}
    assert _value(metrics, "http_client_retries_total", **labels) == 2


async def test_breaker_state_and_transitions() -> None:
    """Opening sets state{open}=1 and {closed}=0 and counts the transition."""
    metrics = MetricsPlugin()
    config = BreakerConfig(consecutive_failures=2)
    client = _client(
        metrics, lambda r: HttpResponse(502), [CircuitBreakerPlugin(config, clock=FakeClock())]
    )
    for _ in range(3):
        await client.get("/x")
    server = "api.test:80"
    assert (
        _value(metrics, "http_client_circuit_breaker_state", server_address=server, state="open")
        == 1
    )
    assert (
        _value(metrics, "http_client_circuit_breaker_state", server_address=server, state="closed")
        == 0
    )
    transitions = {"server_address": server, "from_state": "closed", "to_state": "open"}
    assert _value(metrics, "http_client_circuit_breaker_transitions_total", **transitions) == 1
    failures = {"http_request_method": "GET", "server_address": server,
                "status_class": "none", "error_type": "CIRCUIT_OPEN"}  # fmt: skip
    assert _value(metrics, "http_client_request_duration_seconds_count", **failures) == 1


async def test_rate_limit_waits_are_observed() -> None:
    """A call that waited in the client limiter is recorded in the wait histogram."""
    metrics = MetricsPlugin()
    limiter = RateLimitPlugin(RateLimitConfig(enabled=True, rate=1.0, burst=1), clock=FakeClock())
    client = _client(metrics, plugins=[limiter])
    await client.get("/x")
    await client.get("/x")
    count = _value(
        metrics, "http_client_rate_limit_wait_seconds_count", server_address="api.test:80"
    )
    total = _value(metrics, "http_client_rate_limit_wait_seconds_sum", server_address="api.test:80")
    assert count == 1
    assert total is not None and total > 0


@pytest.mark.parametrize("status", ["hit", "miss", "stale"])
async def test_cache_status_is_counted(status: str) -> None:
    """The response's cache_status becomes the cache counter's result label."""

    async def cache(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        result = await call_next(request)
        result.value.cache_status = status
        return result

    metrics = MetricsPlugin()
    await _client(metrics, plugins=[cache]).get("/x")
    labels = {"server_address": "api.test:80", "result": status}
    assert _value(metrics, "http_client_cache_requests_total", **labels) == 1


async def test_responses_without_cache_status_are_not_counted() -> None:
    """No cache in the pipeline: the cache counter stays empty."""
    metrics = MetricsPlugin()
    await _client(metrics).get("/x")
    assert metrics.label_values("result") == set()


async def test_watched_client_pool_is_read_at_scrape_time() -> None:
    """watch() exposes the client's pool figures, and drops it once closed."""
    metrics = MetricsPlugin()
    client = _client(metrics, lambda r: HttpResponse(200, content=b"x"))
    metrics.watch(client, "api")
    metrics.watch(client, "api")  # the same client again is fine
    async with client.stream("GET", "/x"):
        in_use = _value(metrics, "http_client_pool_connections", client="api", state="in_use")
    assert in_use == 1.0
    assert _value(metrics, "http_client_pool_connections", client="api", state="in_use") == 0.0
    assert _value(metrics, "http_client_pool_max_connections", client="api") == 0.0
    await client.aclose()
    assert _value(metrics, "http_client_pool_connections", client="api", state="idle") is None


async def test_watch_refuses_a_second_live_client_with_the_same_name() -> None:
    """Two live clients cannot share a name; a closed one can be replaced."""
    metrics = MetricsPlugin()
    first, second = _client(metrics), _client(metrics)
    metrics.watch(first, "api")
    with pytest.raises(ValueError, match="already watched"):
        metrics.watch(second, "api")
    await first.aclose()
    metrics.watch(second, "api")
    await second.aclose()


def test_garbage_collected_client_is_dropped() -> None:
    """A watched client that was garbage-collected disappears from the scrape."""
    metrics = MetricsPlugin()
    metrics.watch(_client(metrics), "gone")
    gc.collect()
    assert b'client="gone"' not in metrics.exposition()


def test_plugins_have_separate_registries_by_default() -> None:
    """Two plugins never collide on the same series names."""
    first, second = MetricsPlugin(), MetricsPlugin()
    assert first.registry is not second.registry


def test_given_registry_is_used() -> None:
    """A registry passed in receives the series."""
    registry = CollectorRegistry()
    MetricsPlugin(registry)
    assert "http_client_request_duration_seconds" in {m.name for m in registry.collect()}


def test_exposition_is_prometheus_text() -> None:
    """exposition() is the text format; content_type says so."""
    metrics = MetricsPlugin()
    assert metrics.exposition().startswith(b"# HELP")
    assert metrics.content_type.startswith("text/plain")


def test_max_servers_must_be_positive() -> None:
    """max_servers below 1 is a programmer error."""
    with pytest.raises(ValueError, match="max_servers"):
        MetricsPlugin(max_servers=0)


def test_metrics_plugin_resolves_lazily_and_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without prometheus-client, MetricsPlugin fails with an ImportError naming the extra."""
    import flext_api.client.observability as obs

    monkeypatch.delitem(obs.__dict__, "MetricsPlugin", raising=False)
    monkeypatch.delitem(sys.modules, "flext_api.client.observability._metrics")
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"flext-api\[metrics\]"):
        _ = obs.MetricsPlugin
    with pytest.raises(AttributeError, match="Nope"):
        _ = obs.Nope


def test_metrics_plugin_resolves_when_installed() -> None:
    """With prometheus-client installed the lazy name resolves to the class."""
    obs = importlib.import_module("flext_api.client.observability")
    assert (
        obs.MetricsPlugin
        is importlib.import_module("flext_api.client.observability._metrics").MetricsPlugin
    )


def test_spellings_of_one_server_are_one_server_address() -> None:
    """A trailing dot, a default port or a long IPv6 form do not make a new series."""
    from flext_api._models import HttpRequest
    from flext_api.client.observability._scope import server_address

    urls = [
        "https://api.example.com/",
        "https://API.example.com.:443/x",
        "https://u@api.example.com/",
    ]
    assert {server_address(HttpRequest("GET", url)) for url in urls} == {"api.example.com:443"}
    v6 = ["http://[::1]/", "http://[0:0::1]:80/"]
    assert {server_address(HttpRequest("GET", url)) for url in v6} == {"[::1]:80"}
