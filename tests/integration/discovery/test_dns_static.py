"""DNS SRV/A backend against a local UDP responder; the static backend from config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from flext_api._errors import ConfigError, ErrorCode
from flext_api.discovery import (
    DnsBackend,
    ServiceInstance,
    ServiceRegistry,
    StaticBackend,
)
from flext_api.testing import FakeClock
from tests._poll import eventually
from tests.servers.dns_server import DnsServer

pytestmark = pytest.mark.integration

ZONE = {
    ("_orders._tcp.svc.test", "SRV"): [
        (30, "10 60 9001 a.svc.test."),
        (30, "10 20 9002 b.svc.test."),
        (30, "20 10 9003 c.svc.test."),
    ],
    ("a.svc.test", "A"): [(30, "127.0.0.1")],
    ("b.svc.test", "A"): [(30, "127.0.0.2")],
    ("c.svc.test", "A"): [(30, "127.0.0.3")],
    ("users.svc.test", "A"): [(5, "127.0.0.5"), (5, "127.0.0.6")],
}


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS responder for svc.test on 127.0.0.1."""
    with DnsServer(dict(ZONE)) as server:
        yield server


def _backend(server: DnsServer, clock: FakeClock, record: str = "SRV") -> DnsBackend:
    return DnsBackend(
        "svc.test",
        record=record,
        nameservers=["127.0.0.1"],
        port=server.port,
        clock=clock,
        timeout=0.5,
    )


async def test_srv_records_give_hosts_ports_and_weights(dns_server: DnsServer) -> None:
    """SRV: the lowest priority group, resolved to addresses, with SRV weights."""
    listed = (await _backend(dns_server, FakeClock()).list("orders")).value
    assert [(i.url, i.weight) for i in listed] == [
        ("http://127.0.0.1:9001", 60),
        ("http://127.0.0.2:9002", 20),
    ]


async def test_a_records_use_the_default_port(dns_server: DnsServer) -> None:
    """A: every address on default_port."""
    listed = (await _backend(dns_server, FakeClock(), "A").list("users")).value
    assert [i.url for i in listed] == ["http://127.0.0.5:80", "http://127.0.0.6:80"]


async def test_answers_are_cached_for_their_ttl(dns_server: DnsServer) -> None:
    """Within the TTL no query is sent again; after it, one is."""
    clock = FakeClock()
    backend = _backend(dns_server, clock, "A")
    await backend.list("users")
    await backend.list("users")
    assert dns_server.queries[("users.svc.test", "A")] == 1
    clock.advance(5.0)
    await backend.list("users")
    assert dns_server.queries[("users.svc.test", "A")] == 2


async def test_unknown_name_is_no_instance(dns_server: DnsServer) -> None:
    """NXDOMAIN is an answer: an empty list, not a failure."""
    assert (await _backend(dns_server, FakeClock()).list("ghost")).value == []


async def test_dns_outage_keeps_the_last_known_instances(dns_server: DnsServer) -> None:
    """The DNS server going silent: DNS_ERROR from the backend, the registry keeps serving."""
    clock = FakeClock()
    registry = ServiceRegistry(_backend(dns_server, clock, "A"), clock=clock)
    assert (await registry.refresh("users")).is_success
    dns_server.down = True
    clock.advance(10.0)
    failed = await registry.refresh("users")
    assert failed.error_code is ErrorCode.DNS_ERROR
    assert (await registry.get_instance("users")).is_success
    assert registry.stats()["services"]["users"]["stale"] is True
    await registry.aclose()


async def test_srv_target_without_an_address_is_skipped(dns_server: DnsServer) -> None:
    """An SRV target with no A record (NXDOMAIN, or an IPv6-only host) is left out and
    logged once by name; the service's other targets are served."""
    dns_server.zone[("_pay._tcp.svc.test", "SRV")] = [
        (30, "10 5 9001 a.svc.test."),
        (30, "10 5 9009 gone.svc.test."),
        (30, "10 5 9008 v6only.svc.test."),
    ]
    dns_server.zone[("v6only.svc.test", "A")] = []  # the name exists, with no A record
    clock = FakeClock()
    backend = _backend(dns_server, clock)
    with capture_logs() as logs:
        for _ in range(2):
            listed = await backend.list("pay")
            assert [i.url for i in listed.value] == ["http://127.0.0.1:9001"]
            clock.advance(60.0)  # past the TTL: listed again
    warned = [e["target"] for e in logs if e["event"] == "discovery.srv_target_unresolvable"]
    assert sorted(warned) == ["gone.svc.test", "v6only.svc.test"]


async def test_srv_record_with_port_zero_is_skipped(dns_server: DnsServer) -> None:
    """An SRV record naming port 0 is left out and logged once: it used to become an
    instance at ``host:0`` that took traffic (here most of it, by weight) and failed
    every call; the service's other records are served."""
    dns_server.zone[("_pay._tcp.svc.test", "SRV")] = [
        (30, "10 60 0 a.svc.test."),
        (30, "10 5 9002 b.svc.test."),
    ]
    clock = FakeClock()
    backend = _backend(dns_server, clock)
    with capture_logs() as logs:
        for _ in range(2):
            listed = await backend.list("pay")
            assert [i.url for i in listed.value] == ["http://127.0.0.2:9002"]
            clock.advance(60.0)  # past the TTL: listed again
    warned = [e for e in logs if e["event"] == "discovery.bad_record"]
    assert [(e["backend"], e["target"], e["port"]) for e in warned] == [("dns", "a.svc.test", 0)]


async def test_srv_group_without_any_address_gives_way_to_the_next_priority(
    dns_server: DnsServer,
) -> None:
    """When no target of the lowest priority group has an address, the next group serves."""
    dns_server.zone[("_pay._tcp.svc.test", "SRV")] = [
        (30, "10 5 9009 gone.svc.test."),
        (30, "20 5 9003 c.svc.test."),
    ]
    listed = await _backend(dns_server, FakeClock()).list("pay")
    assert [i.url for i in listed.value] == ["http://127.0.0.3:9003"]


async def test_srv_targets_all_without_address_keep_the_last_known_set(
    dns_server: DnsServer,
) -> None:
    """Every SRV target losing its address is a failed lookup: the registry keeps the
    last known instances, marked stale, instead of emptying the service."""
    dns_server.zone[("_pay._tcp.svc.test", "SRV")] = [(30, "10 5 9010 pay.svc.test.")]
    dns_server.zone[("pay.svc.test", "A")] = [(30, "127.0.0.10")]
    clock = FakeClock()
    registry = ServiceRegistry(_backend(dns_server, clock), clock=clock)
    assert (await registry.refresh("pay")).is_success
    del dns_server.zone[("pay.svc.test", "A")]
    clock.advance(60.0)
    failed = await registry.refresh("pay")
    assert failed.error_code is ErrorCode.DNS_ERROR
    assert "no target of _pay._tcp.svc.test has an address" in (failed.error or "")
    assert (await registry.get_instance("pay")).value.url == "http://127.0.0.10:9010"
    assert registry.stats()["services"]["pay"]["stale"] is True
    await registry.aclose()


async def test_dns_registry_is_read_only(dns_server: DnsServer) -> None:
    """Registering through DNS fails with CONFIG_ERROR."""
    registry = ServiceRegistry(_backend(dns_server, FakeClock()))
    inst = ServiceInstance(id="x", name="orders", url="http://127.0.0.1:1")
    assert (await registry.register("orders", inst)).error_code is ErrorCode.CONFIG_ERROR
    assert (await registry.unregister("orders", "x")).error_code is ErrorCode.CONFIG_ERROR
    await registry.aclose()


def test_dns_backend_rejects_bad_settings() -> None:
    """Unknown record types, schemes and TTL bounds are ConfigErrors."""
    with pytest.raises(ConfigError):
        DnsBackend(record="MX")
    with pytest.raises(ConfigError):
        DnsBackend(scheme="ftp")
    with pytest.raises(ConfigError):
        DnsBackend(min_ttl=5, max_ttl=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nameservers": ["not-an-address"]}, "nameservers"),
        ({"port": 0}, "1..65535"),
        ({"default_port": 70000}, "1..65535"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_dns_backend_names_a_bad_server_setting(kwargs: dict[str, Any], message: str) -> None:
    """A name server dnspython cannot use, a port out of range or a zero timeout is a
    ConfigError at construction, not a ValueError or a failure on every lookup."""
    with pytest.raises(ConfigError, match=message):
        DnsBackend("svc.test", **kwargs)


async def test_static_backend_serves_configured_instances() -> None:
    """URLs and dicts from config become instances with stable ids."""
    backend = StaticBackend(
        {"orders": ["http://127.0.0.1:9001", {"url": "http://127.0.0.1:9002", "weight": 3}]}
    )
    registry = ServiceRegistry(backend)
    listed = (await registry.refresh("orders")).value
    assert [(i.id, i.weight) for i in listed] == [("127.0.0.1-9001", 1), ("127.0.0.1-9002", 3)]
    assert (await registry.get_instance("orders")).is_success


def test_static_backend_names_the_bad_entry() -> None:
    """A malformed entry is a ConfigError naming its place in the config."""
    with pytest.raises(ConfigError, match=r"services\.orders\[1\]"):
        StaticBackend({"orders": ["http://127.0.0.1:1", {"url": "ftp://x"}]})


@pytest.mark.parametrize(
    "entries",
    [
        ["http://127.0.0.1:9001", "http://127.0.0.1:9001/v2"],
        [{"id": "a", "url": "http://127.0.0.1:1"}, {"id": "a", "url": "http://127.0.0.1:2"}],
    ],
)
def test_static_backend_refuses_two_entries_with_one_id(entries: list[Any]) -> None:
    """Two entries of one service with the same id (given, or made of the same host and
    port) are a ConfigError naming the second: the first was silently dropped."""
    with pytest.raises(ConfigError, match=r"services\.orders\[1\]: .*duplicate instance id"):
        StaticBackend({"orders": entries})


@pytest.mark.parametrize(
    ("url", "ident"),
    [
        ("http://bücher.example:8080", "xn--bcher-kva.example-8080"),
        ("http://[fe80::1%25eth0]:8080", "fe80--1-25eth0-8080"),
        ("http://[::1]:8080", "--1-8080"),
    ],
)
async def test_static_backend_makes_a_usable_id_for_any_valid_url(url: str, ident: str) -> None:
    """A URL entry without an id gets one made only of id characters: an
    internationalised host or an IPv6 zone used to give an id the backend then refused
    (a ConfigError about an id the config never wrote)."""
    backend = StaticBackend({"orders": [url]})
    assert [(i.id, i.url) for i in (await backend.list("orders")).value] == [(ident, url)]


def test_static_backend_refuses_a_config_of_the_wrong_shape() -> None:
    """A list instead of a mapping, or one URL instead of a list of them, is a ConfigError
    saying so (one URL used to be read character by character)."""
    with pytest.raises(ConfigError, match="must map a service name"):
        StaticBackend(["http://127.0.0.1:1"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"services\.orders must be a list"):
        StaticBackend({"orders": "http://127.0.0.1:1"})


async def test_registry_follows_dns_changes_after_the_ttl(dns_server: DnsServer) -> None:
    """A record changed in DNS reaches the registry once the cached answer expires."""
    dns_server.zone[("pool.svc.test", "A")] = [(1, "127.0.0.8")]
    backend = DnsBackend(
        "svc.test", record="A", nameservers=["127.0.0.1"], port=dns_server.port, timeout=0.5
    )
    registry = ServiceRegistry(backend)
    assert (await registry.get_instance("pool")).value.url == "http://127.0.0.8:80"
    dns_server.zone[("pool.svc.test", "A")] = [(1, "127.0.0.9")]

    def moved() -> bool:
        return [i.url for i in registry.instances("pool").value] == ["http://127.0.0.9:80"]

    assert await eventually(moved)
    await registry.aclose()
