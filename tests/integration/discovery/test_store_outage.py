"""Redis or etcd stopped mid-run: calls keep flowing, one warning, stale shown, recovery."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from flext_api import FlextApiClient
from flext_api.discovery import (
    DiscoveryCollector,
    EtcdBackend,
    RedisBackend,
    RegistryBackend,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.testing import set_testing
from tests._poll import eventually
from tests.servers.etcd_server import EtcdServer
from tests.servers.redis_server import RedisServer

from .upstream import Upstream

pytestmark = pytest.mark.integration


def _stale(registry: ServiceRegistry) -> bool:
    return bool(registry.stats()["services"]["orders"]["stale"])


@pytest.mark.parametrize("kind", ["redis", "etcd"])
async def test_store_outage_keeps_calls_flowing(
    kind: str, upstreams: list[Upstream], request: pytest.FixtureRequest
) -> None:
    """The store stops: calls still reach the known instances; it returns: fresh again."""
    prefix = f"o-{uuid.uuid4().hex[:8]}"
    store: RedisServer | EtcdServer = request.getfixturevalue(f"own_{kind}")

    def backend() -> RegistryBackend:
        if isinstance(store, RedisServer):
            return RedisBackend(store.url, ttl=1.5, prefix=prefix)
        return EtcdBackend(store.url, ttl=2, prefix=f"/{prefix}")

    owner = backend()  # the instances' own process: heartbeats only, no watching
    for up in upstreams:
        inst = ServiceInstance(id=up.name, name="orders", url=up.url)
        assert (await owner.register(inst)).is_success
    caller = ServiceRegistry(backend())
    with set_testing(True), capture_logs() as logs:
        async with caller, FlextApiClient("service://orders", registry=caller) as client:
            assert (await client.get("/id")).is_success
            assert await eventually(lambda: len(caller.instances("orders").value) == 3)
            store.pause()
            assert await eventually(lambda: _stale(caller))
            prom = CollectorRegistry()
            prom.register(DiscoveryCollector(caller))
            gauge = {"service": "orders", "backend": kind}
            assert prom.get_sample_value("flext_api_discovery_stale", gauge) == 1
            results = [await client.get("/id") for _ in range(30)]
            assert all(r.is_success for r in results)
            assert {r.value.text for r in results} == {"a", "b", "c"}
            store.restart()
            assert await eventually(lambda: not _stale(caller))
            assert await eventually(lambda: len(caller.instances("orders").value) == 3)
            assert (await client.get("/id")).is_success
    await owner.aclose()
    warnings = [e for e in logs if e["event"] == "discovery.backend_unreachable"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert any(e["event"] == "discovery.backend_recovered" for e in logs)
