"""``DiscoveryCollector``: a registry's state as Prometheus metrics.

Register it once: ``prometheus_client.REGISTRY.register(DiscoveryCollector(registry))``.
Values are read from :meth:`ServiceRegistry.stats` at scrape time, so nothing is paid
per call. Labels are bounded by the registered services and instances.

* ``flext_api_discovery_instances{service,state}`` - instances up, down or ejected;
* ``flext_api_discovery_stale{service,backend}`` - 1 while the backend cannot be
  reached and the last known instances are served;
* ``flext_api_discovery_panic{service}`` - 1 while no instance is available;
* ``flext_api_discovery_picks_total{service,instance}`` - picks per instance;
* ``flext_api_discovery_ejections{service,instance}`` - current ejection multiplier;
* ``flext_api_discovery_probes_total{service,instance,result}`` - active probe results.

Needs ``prometheus-client`` (the ``metrics`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._registry import ServiceRegistry

__all__ = ["DiscoveryCollector"]

_STATES = ("up", "down", "ejected")


class DiscoveryCollector(Collector):
    """Exposes one :class:`ServiceRegistry` to a Prometheus ``CollectorRegistry``."""

    def __init__(self, registry: ServiceRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        stats = self.registry.stats()
        backend = str(stats["backend"])
        instances = GaugeMetricFamily(
            "flext_api_discovery_instances", "Instances by live state", labels=["service", "state"]
        )
        stale = GaugeMetricFamily(
            "flext_api_discovery_stale",
            "1 while the last known instances are served because the backend is unreachable",
            labels=["service", "backend"],
        )
        panic = GaugeMetricFamily(
            "flext_api_discovery_panic", "1 while no instance is available", labels=["service"]
        )
        picks = CounterMetricFamily(
            "flext_api_discovery_picks", "Picks per instance", labels=["service", "instance"]
        )
        ejections = GaugeMetricFamily(
            "flext_api_discovery_ejections",
            "Ejection multiplier per instance",
            labels=["service", "instance"],
        )
        probes = CounterMetricFamily(
            "flext_api_discovery_probes",
            "Active health probe results",
            labels=["service", "instance", "result"],
        )
        for service, info in stats["services"].items():
            rows = info["instances"]
            for state in _STATES:
                instances.add_metric([service, state], sum(1 for r in rows if r["state"] == state))
            stale.add_metric([service, backend], 1.0 if info["stale"] else 0.0)
            panic.add_metric([service], 1.0 if info["panic"] else 0.0)
            for row in rows:
                picks.add_metric([service, row["id"]], row["picks"])
                ejections.add_metric([service, row["id"]], row["ejections"])
        for (service, instance, passed), count in sorted(self.registry.probe_counts().items()):
            probes.add_metric([service, instance, "pass" if passed else "fail"], count)
        yield from (instances, stale, panic, picks, ejections, probes)
