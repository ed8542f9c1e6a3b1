"""DiscoveryCollector: the registry's state as Prometheus samples."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from flext_api.discovery import DiscoveryCollector, ServiceInstance, ServiceRegistry


async def test_collector_exposes_states_picks_and_probes() -> None:
    """Instances by state, picks per instance, probe results and the stale flag."""
    registry = ServiceRegistry()
    for k in range(2):
        inst = ServiceInstance(id=f"o{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}")
        await registry.register("orders", inst)
    for _ in range(4):
        registry.pick("orders")
    for _ in range(3):
        registry.record_probe("orders", "o1", passed=False, status=503, error=None)
    prom = CollectorRegistry()
    prom.register(DiscoveryCollector(registry))
    value = prom.get_sample_value
    assert value("flext_api_discovery_instances", {"service": "orders", "state": "up"}) == 1
    assert value("flext_api_discovery_instances", {"service": "orders", "state": "down"}) == 1
    picks = [
        value("flext_api_discovery_picks_total", {"service": "orders", "instance": f"o{k}"})
        for k in range(2)
    ]
    assert picks == [2, 2]
    labels = {"service": "orders", "instance": "o1", "result": "fail"}
    assert value("flext_api_discovery_probes_total", labels) == 3
    assert value("flext_api_discovery_stale", {"service": "orders", "backend": "memory"}) == 0
    assert value("flext_api_discovery_panic", {"service": "orders"}) == 0


async def test_probe_counts_are_dropped_with_the_instance() -> None:
    """Unregistering an instance drops its probe counters (bounded labels)."""
    registry = ServiceRegistry()
    await registry.register("orders", ServiceInstance(id="o0", name="orders", url="http://h:1"))
    registry.record_probe("orders", "o0", passed=True, status=200, error=None)
    await registry.unregister("orders", "o0")
    assert registry.probe_counts() == {}
