"""RFC 2782 weights and duplicate targets, against a local DNS responder on 127.0.0.1:
weight-0 targets are picked rarely but not never, all-zero groups uniformly, SRV
weights past 10000 keep their proportions, and an endpoint named twice is one instance."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import pytest

from flext_api.discovery import DnsBackend, ServiceInstance
from flext_api.discovery._balancers import RandomBalancer
from flext_api.testing import FakeClock
from tests.servers.dns_server import DnsServer

pytestmark = pytest.mark.integration

ADDRESSES = {
    ("a.svc.test", "A"): [(30, "127.0.0.1")],
    ("b.svc.test", "A"): [(30, "127.0.0.2")],
    ("c.svc.test", "A"): [(30, "127.0.0.3")],
    ("alias.svc.test", "A"): [(30, "127.0.0.1")],
}


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS responder for svc.test on 127.0.0.1."""
    with DnsServer(dict(ADDRESSES)) as server:
        yield server


async def _list(server: DnsServer, *records: str) -> list[ServiceInstance]:
    server.zone[("_pay._tcp.svc.test", "SRV")] = [(30, text) for text in records]
    backend = DnsBackend(
        "svc.test", nameservers=["127.0.0.1"], port=server.port, clock=FakeClock(), timeout=2
    )
    result = await backend.list("pay")
    assert result.is_success, result.error
    return result.value


def _weights(instances: list[ServiceInstance]) -> dict[str, int]:
    return {i.url: i.weight for i in instances}


async def test_weight_zero_beside_weighted_targets_gets_a_very_small_share(
    dns_server: DnsServer,
) -> None:
    """Weights 0 and 1: the weight-0 target keeps a share, about 1 in 10000, not half."""
    listed = await _list(dns_server, "10 0 9001 a.svc.test.", "10 1 9002 b.svc.test.")
    assert _weights(listed) == {"http://127.0.0.1:9001": 1, "http://127.0.0.2:9002": 10000}


async def test_weight_zero_keeps_the_weighted_targets_proportions(dns_server: DnsServer) -> None:
    """Weights 0, 60, 20: 60 and 20 keep a 3:1 ratio, the weight-0 target gets 1."""
    listed = await _list(
        dns_server, "10 0 9001 a.svc.test.", "10 60 9002 b.svc.test.", "10 20 9003 c.svc.test."
    )
    weights = _weights(listed)
    assert weights["http://127.0.0.1:9001"] == 1
    assert weights["http://127.0.0.2:9002"] == 3 * weights["http://127.0.0.3:9003"] > 9000


async def test_all_zero_weights_are_chosen_uniformly(dns_server: DnsServer) -> None:
    """A group whose weights are all 0 gives every target the same weight."""
    listed = await _list(dns_server, "10 0 9001 a.svc.test.", "10 0 9002 b.svc.test.")
    assert set(_weights(listed).values()) == {1}


async def test_weights_past_10000_keep_their_proportions(dns_server: DnsServer) -> None:
    """SRV weights 20000 and 10000 (instances allow up to 10000) stay 2:1, not 1:1."""
    listed = await _list(dns_server, "10 20000 9001 a.svc.test.", "10 10000 9002 b.svc.test.")
    assert _weights(listed) == {"http://127.0.0.1:9001": 10000, "http://127.0.0.2:9002": 5000}


async def test_weight_zero_target_is_picked_sometimes(dns_server: DnsServer) -> None:
    """Through a weighted balancer, the weight-0 target is picked, and rarely."""
    listed = await _list(dns_server, "10 0 9001 a.svc.test.", "10 1 9002 b.svc.test.")
    balancer = RandomBalancer()
    balancer.update(listed)
    state = random.getstate()
    random.seed(2782)
    try:
        picks = Counter(p.url for p in (balancer.pick() for _ in range(100_000)) if p)
    finally:
        random.setstate(state)
    assert 0 < picks["http://127.0.0.1:9001"] < 100


async def test_one_endpoint_named_twice_is_one_instance_with_summed_weight(
    dns_server: DnsServer,
) -> None:
    """Two records for one host:port give one instance whose weight is their sum."""
    listed = await _list(dns_server, "10 60 9001 a.svc.test.", "10 40 9001 a.svc.test.")
    assert [(i.id, i.weight) for i in listed] == [("127.0.0.1-9001", 100)]


async def test_two_names_of_one_address_and_port_are_one_instance(
    dns_server: DnsServer,
) -> None:
    """Targets a and alias (one address) on one port are one instance, weights summed;
    other ports of that address stay their own instances."""
    listed = await _list(
        dns_server,
        "10 5 9001 a.svc.test.",
        "10 5 9001 alias.svc.test.",
        "10 5 9002 alias.svc.test.",
    )
    assert [(i.id, i.weight) for i in listed] == [("127.0.0.1-9001", 10), ("127.0.0.1-9002", 5)]
    assert len({i.id for i in listed}) == len(listed)
