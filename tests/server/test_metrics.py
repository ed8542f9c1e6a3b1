"""Prometheus metrics: route templates, bounded labels, per-app registry, protection."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._server_config import MetricsConfig
from flext_api.server import ServerMetrics
from tests.server.conftest import Build
from tests.server.helpers import problem, serve

DURATION = "http_server_request_duration_seconds"


def _counts(text: str) -> dict[tuple[str, str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{DURATION}_count":
                labels = sample.labels
                counts[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counts


def _gauge(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "http_server_active_requests":
            return float(family.samples[0].value)
    raise AssertionError("gauge missing")


async def test_labels_use_route_template(build: Build) -> None:
    """Requests are counted per method, route template and status class."""
    app = build()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with serve(app) as client:
        for item_id in (1, 2, 3):
            await client.get(f"/items/{item_id}")
        await client.get("/items/not-a-number")
        text = (await client.get("/metrics")).text
    counts = _counts(text)
    assert counts[("GET", "/items/{item_id}", "2xx")] == 3
    assert counts[("GET", "/items/{item_id}", "4xx")] == 1
    assert not any(route == "/metrics" for _, route, _ in counts)


async def test_unmatched_paths_and_odd_methods_collapse(build: Build) -> None:
    """Unknown paths share <unmatched>; a non-standard method becomes _OTHER."""
    async with serve(build()) as client:
        for n in range(20):
            await client.get(f"/random/{n}")
        await client.request("PURGE", "/health")
        text = (await client.get("/metrics")).text
    counts = _counts(text)
    assert counts[("GET", "<unmatched>", "4xx")] == 20
    assert counts[("_OTHER", "/health", "4xx")] == 1


async def test_status_codes_ungrouped_and_custom_path(build: Build) -> None:
    """group_status_codes=False labels the exact code; path moves the endpoint."""
    config = ServerConfig(metrics=MetricsConfig(group_status_codes=False, path="/internal/m"))
    async with serve(build(config)) as client:
        await client.get("/health")
        await client.get("/missing")
        old = await client.get("/metrics")
        text = (await client.get("/internal/m")).text
    counts = _counts(text)
    assert counts[("GET", "/health", "200")] == 1
    assert counts[("GET", "<unmatched>", "404")] == 2  # /missing and the old /metrics path
    assert old.status_code == 404


async def test_in_progress_gauge_reads_in_flight(build: Build) -> None:
    """The in-progress gauge counts the scrape itself while it is served."""
    async with serve(build()) as client:
        text = (await client.get("/metrics")).text
    assert _gauge(text) == 1.0


async def test_each_app_has_its_own_registry(build: Build) -> None:
    """Two apps in one process do not share (or collide on) series."""
    first, second = build(), build()
    async with serve(first) as a, serve(second) as b:
        await a.get("/health")
        await a.get("/health")
        text = (await b.get("/metrics")).text
    assert ("GET", "/health", "2xx") not in _counts(text)


async def test_token_protects_endpoint(build: Build) -> None:
    """With a token, /metrics needs 'Bearer <token>'; anything else is a 401 problem."""
    app = build(ServerConfig(metrics=MetricsConfig(token=SecretStr("s3cret-metrics-token"))))
    async with serve(app) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic s3cret"})
        right = await client.get(
            "/metrics", headers={"Authorization": "bearer s3cret-metrics-token"}
        )
    for refused in (missing, wrong, basic):
        assert problem(refused)["status"] == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")


async def test_disabled_metrics_has_no_endpoint(build: Build) -> None:
    """enabled=False removes the endpoint and the layer."""
    app = build(ServerConfig(metrics=MetricsConfig(enabled=False)))
    async with serve(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert app.state.flext.metrics is None


async def test_exclude_paths_are_not_measured(build: Build) -> None:
    """exclude_paths are left out of the histogram."""
    app = build(ServerConfig(metrics=MetricsConfig(exclude_paths=("/health",))))
    async with serve(app) as client:
        await client.get("/health")
        text = (await client.get("/metrics")).text
    assert not any(route == "/health" for _, route, _ in _counts(text))


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    """A value equal to a bound counts in that bucket (le); buckets add up; sum is kept."""
    metrics = ServerMetrics(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 2.0):
        metrics.observe("GET", "/x", 200, seconds)
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name.startswith(DURATION)
    }
    assert samples[(f"{DURATION}_bucket", "0.1")] == 2
    assert samples[(f"{DURATION}_bucket", "1.0")] == 3
    assert samples[(f"{DURATION}_bucket", "+Inf")] == 4
    assert samples[(f"{DURATION}_count", None)] == 4
    assert samples[(f"{DURATION}_sum", None)] == 2.65


def test_duplicate_registration_is_refused() -> None:
    """Two ServerMetrics on one registry collide, as Prometheus names must be unique."""
    first = ServerMetrics(buckets=(1.0,))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        ServerMetrics(buckets=(1.0,), registry=first.registry)
