"""FlextApiClient over service:// against three real instances on 127.0.0.1."""

from __future__ import annotations

import pytest

from flext_api import BreakerConfig, CircuitBreakerPlugin, ClientConfig, FlextApiClient
from flext_api._errors import ConfigError
from flext_api.discovery import (
    DiscoveryEvent,
    HealthCheckConfig,
    InstanceStateChanged,
    OutlierConfig,
    ProbeCompleted,
    ServiceClient,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.testing import describe, set_testing
from tests._poll import eventually

from .upstream import Upstream

pytestmark = pytest.mark.integration

FAST_PROBES = HealthCheckConfig(
    interval=0.05, timeout=1.0, healthy_threshold=2, unhealthy_threshold=2, jitter=0.1
)


async def _registry(upstreams: list[Upstream], **kwargs: object) -> ServiceRegistry:
    registry = ServiceRegistry(**kwargs)  # type: ignore[arg-type]
    for up in upstreams:
        inst = ServiceInstance(id=up.name, name="orders", url=up.url)
        assert (await registry.register("orders", inst)).is_success
    return registry


def _state(registry: ServiceRegistry, instance_id: str) -> str:
    rows = registry.stats()["services"]["orders"]["instances"]
    return next(str(r["state"]) for r in rows if r["id"] == instance_id)


async def test_calls_spread_over_every_instance(upstreams: list[Upstream]) -> None:
    """service://orders/id reaches all three instances in turn."""
    registry = await _registry(upstreams)
    async with FlextApiClient("service://orders", registry=registry) as client:
        names = {(await client.get("/id")).value.text for _ in range(6)}
    await registry.aclose()
    assert names == {"a", "b", "c"}


async def test_killed_instance_fails_no_idempotent_call(upstreams: list[Upstream]) -> None:
    """One instance killed mid-run: every GET still succeeds on another instance."""
    registry = await _registry(upstreams)
    failures = []
    with set_testing(True):
        async with FlextApiClient("service://orders", registry=registry) as client:
            for k in range(60):
                if k == 20:
                    upstreams[1].stop()
                result = await client.get("/id")
                if result.is_failure:
                    failures.append(result.error)
                elif k > 20:
                    assert result.value.text != "b"
    await registry.aclose()
    assert failures == []


async def test_absolute_service_url_and_retry_avoid_the_dead_host(
    upstreams: list[Upstream],
) -> None:
    """A retry after a connect error goes to an instance not tried yet."""
    registry = await _registry(upstreams)
    upstreams[0].stop()
    with set_testing(True):
        async with FlextApiClient(registry=registry) as client:
            results = [await client.get("service://orders/id") for _ in range(9)]
    await registry.aclose()
    assert all(r.is_success and r.value.text in ("b", "c") for r in results)
    assert max(r.value.attempts for r in results) == 2


async def test_dead_instance_is_readmitted_after_healthy_threshold_probes(
    upstreams: list[Upstream],
) -> None:
    """A killed instance goes down by probes and comes back after 2 passing probes."""
    events: list[DiscoveryEvent] = []
    registry = await _registry(upstreams, health_check=FAST_PROBES, hooks=[events.append])
    async with registry:
        upstreams[2].stop()
        assert await eventually(lambda: _state(registry, "c") == "down")
        upstreams[2].start()
        assert await eventually(lambda: _state(registry, "c") == "up")
    ups = [e for e in events if isinstance(e, InstanceStateChanged) and e.event == "up"]
    assert [e.instance_id for e in ups] == ["c"]
    assert ups[0].reason == "2 consecutive probes passed"
    assert any(isinstance(e, ProbeCompleted) and not e.passed for e in events)


async def test_flapping_instance_is_ejected_longer_each_time(upstreams: list[Upstream]) -> None:
    """5xx bursts eject an instance for base, 2x base, 3x base..., calls still succeed."""
    events: list[DiscoveryEvent] = []
    outlier = OutlierConfig(consecutive_5xx=3, base_ejection_time=0.1, max_ejection_time=10.0)
    registry = await _registry(upstreams, outlier=outlier, hooks=[events.append])
    upstreams[0].work_status = 500

    def ejections() -> list[float]:
        return [
            e.ejected_for or 0.0
            for e in events
            if isinstance(e, InstanceStateChanged) and e.event == "ejected"
        ]

    # Breakers off: this test watches outlier ejection alone.
    config = ClientConfig(breaker=BreakerConfig(enabled=False))
    with set_testing(True):
        async with FlextApiClient("service://orders", registry=registry, config=config) as client:
            for _ in range(2000):
                if len(ejections()) >= 3:
                    break
                result = await client.get("/work")
                assert result.is_success and result.value.text != "a"
                if _state(registry, "a") == "ejected":
                    await eventually(lambda: _state(registry, "a") == "up")
    await registry.aclose()
    durations = ejections()[:3]
    assert durations == sorted(durations) and durations[0] < durations[2]


async def test_passive_ejection_never_empties_the_cluster(upstreams: list[Upstream]) -> None:
    """Every instance failing: passive checks eject at most max_ejection_percent."""
    registry = await _registry(upstreams, outlier=OutlierConfig(consecutive_5xx=2))
    for up in upstreams:
        up.work_status = 500
    with set_testing(True):
        async with FlextApiClient("service://orders", registry=registry) as client:
            for _ in range(30):
                await client.get("/work")
                assert len(registry.instances("orders", available=True).value) >= 2
    await registry.aclose()


async def test_breakers_are_per_instance(upstreams: list[Upstream]) -> None:
    """A dead instance opens its own breaker; the service keeps answering."""
    registry = await _registry(upstreams, outlier=OutlierConfig(consecutive_gateway_errors=1000))
    upstreams[0].stop()
    with set_testing(True):
        async with FlextApiClient("service://orders", registry=registry) as client:
            results = [await client.get("/id") for _ in range(40)]
            breakers = client.plugins.get("circuit_breaker")
    await registry.aclose()
    assert all(r.is_success for r in results)
    assert isinstance(breakers, CircuitBreakerPlugin)
    breaker_keys = {key for key, _ in breakers.registry}
    dead = f"127.0.0.1:{upstreams[0].port}"
    assert dead in breaker_keys and "orders" not in breaker_keys
    breaker = breakers.registry.peek(dead)
    assert breaker is not None and breaker.state.value == "open"


async def test_removed_instance_is_no_longer_probed(upstreams: list[Upstream]) -> None:
    """After unregister, the prober stops sending health checks to the instance."""
    registry = await _registry(upstreams, health_check=FAST_PROBES)
    async with registry:
        assert await eventually(lambda: upstreams[0].hit_count("/health") >= 1)
        assert (await registry.unregister("orders", "a")).is_success
        at_removal = upstreams[0].hit_count("/health")
        base = upstreams[1].hit_count("/health")
        assert await eventually(lambda: upstreams[1].hit_count("/health") >= base + 3)
    assert upstreams[0].hit_count("/health") <= at_removal + 1  # one probe may be in flight


async def test_service_client_seed_example(upstreams: list[Upstream]) -> None:
    """The seed's ServiceClient(registry, "auth").request("POST", "/verify", json=...) works."""
    registry = ServiceRegistry()
    inst = ServiceInstance(id="auth-1", name="auth", url=upstreams[0].url, health="healthy")
    await registry.register("auth", inst)
    async with ServiceClient(registry, "auth") as auth_client:
        result = await auth_client.request("POST", "/verify", json={"token": "t"})
    await registry.aclose()
    assert result.value.json() == {"instance": "a", "token": "t"}
    assert "auth" in repr(auth_client)


async def test_unknown_service_fails_cleanly() -> None:
    """A service with no instance is a failed result naming it, not an exception."""
    registry = ServiceRegistry()
    with set_testing(True):
        async with FlextApiClient("service://ghost", registry=registry) as client:
            result = await client.get("/x")
    assert result.is_failure and "ghost" in (result.error or "")


async def test_service_url_without_registry_is_invalid() -> None:
    """service:// on a client without a registry fails with INVALID_REQUEST."""
    async with FlextApiClient() as client:
        result = await client.get("service://orders/x")
    assert result.error_code is not None and result.error_code.value == "INVALID_REQUEST"


async def test_describe_shows_registry_and_balancer(upstreams: list[Upstream]) -> None:
    """testing.describe() lists the discovery stage inside retry with its balancer."""
    registry = await _registry(upstreams, balancer="least_request")
    client = FlextApiClient("service://orders", registry=registry)
    stages = describe(client)
    names = [s["name"] for s in stages]
    assert names.index("discovery") == names.index("retry") + 1
    settings = stages[names.index("discovery")]["settings"]
    assert settings["registry"]["balancer"] == "least_request"
    await client.aclose()
    await registry.aclose()


def test_service_base_url_without_registry_is_a_config_error() -> None:
    """FlextApiClient("service://orders") without a registry fails at construction."""
    with pytest.raises(ConfigError, match="registry"):
        FlextApiClient("service://orders")
