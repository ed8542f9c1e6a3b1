"""Balancer state stays bounded when instance ids churn (DNS-discovered pods, autoscaling)."""

from __future__ import annotations

from flext_api.discovery import PeakEwma, ServiceInstance
from flext_api.testing import FakeClock


def _inst(k: int) -> ServiceInstance:
    return ServiceInstance(id=f"10.0.{k // 250}.{k % 250}-80", name="orders", url=f"http://h{k}:80")


def test_peak_ewma_forgets_latencies_of_ids_gone_for_good() -> None:
    """Two instances at a time, 2,000 ids over the balancer's life: the latency table
    holds a bounded number of ids, not every id ever seen."""
    balancer = PeakEwma(clock=FakeClock())
    for k in range(0, 2000, 2):
        pair = [_inst(k), _inst(k + 1)]
        balancer.update(pair)
        for inst in pair:
            balancer.on_start(inst)
            balancer.on_finish(inst, 0.01, True)
    remembered = sum(balancer.latency(_inst(k).id) is not None for k in range(2000))
    assert remembered <= 2 * 2 + 64 + 2, remembered
    # The current instances keep their averages.
    assert balancer.latency(_inst(1998).id) == 0.01


def test_peak_ewma_keeps_the_latency_of_a_host_briefly_out_of_the_set() -> None:
    """An ejected host leaves the available set for a while: its average stays."""
    balancer = PeakEwma(clock=FakeClock())
    hosts = [_inst(k) for k in range(4)]
    balancer.update(hosts)
    for inst in hosts:
        balancer.on_start(inst)
        balancer.on_finish(inst, 0.5, True)
    balancer.update(hosts[1:])  # hosts[0] ejected
    balancer.update(hosts)  # readmitted
    assert balancer.latency(hosts[0].id) == 0.5
