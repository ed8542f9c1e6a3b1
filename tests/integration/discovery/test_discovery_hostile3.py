"""Discovery under hostile conditions, third pass, against the real stores: records that
describe another instance than their key, a lease that ran out while the process was
paused, and a health endpoint that answers 200 with a huge body."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from flext_api._config import PoolConfig, TimeoutConfig
from flext_api.discovery import (
    EtcdBackend,
    HealthCheckConfig,
    RedisBackend,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.discovery._prober import probe_once
from flext_api.transports._aiohttp import AiohttpTransport
from tests.servers.etcd_server import EtcdServer
from tests.servers.fault import FaultServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

LIVE = ServiceInstance(id="o-1", name="orders", url="http://127.0.0.1:9001")
#: A record that claims to be o-1 of orders, with another address.
IMPOSTOR = {"id": "o-1", "name": "orders", "url": "http://127.0.0.1:9666"}
#: A record of another service.
FOREIGN = {"id": "o-2", "name": "users", "url": "http://127.0.0.1:9777"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_redis_skips_a_record_that_describes_another_instance_than_its_field(
    redis_server: RedisServer,
) -> None:
    """A Redis record stored under id 'stray' that claims to be o-1 (or under orders but
    of service users) is logged and left out; the live o-1 keeps its own address."""
    prefix = f"m-{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(redis_server.url, ttl=5.0, prefix=prefix)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert (await backend.register(LIVE)).is_success
        members, data, _ = backend._keys("orders")
        # "z..." ids sort after o-1, so a last-wins listing took the impostor.
        await client.zadd(members, {"zz-stray": 2**50, "zz-foreign": 2**50})
        await client.hset(data, "zz-stray", json.dumps(IMPOSTOR))
        await client.hset(data, "zz-foreign", json.dumps({**FOREIGN, "id": "zz-foreign"}))
        with capture_logs() as logs:
            listed = await backend.list("orders")
    finally:
        await client.aclose()
        await backend.aclose()
    assert listed.value == [LIVE]
    assert [e["event"] for e in logs].count("discovery.bad_record") == 2


async def test_etcd_skips_a_record_that_describes_another_instance_than_its_key(
    etcd: EtcdServer,
) -> None:
    """An etcd record under key .../orders/zz-stray that claims to be o-1 (or one of
    service users) is logged and left out; the registry keeps o-1's real address."""
    prefix = f"/m-{uuid.uuid4().hex[:8]}"
    backend = EtcdBackend(etcd.url, ttl=5, prefix=prefix)
    try:
        assert (await backend.register(LIVE)).is_success
        for key, record in (
            ("zz-stray", IMPOSTOR),
            ("zz-foreign", {**FOREIGN, "id": "zz-foreign"}),
        ):
            await backend._call(
                "/v3/kv/put",
                {"key": _b64(f"{prefix}/orders/{key}"), "value": _b64(json.dumps(record))},
            )
        with capture_logs() as logs:
            listed = await backend.list("orders")
    finally:
        await backend.aclose()
    assert listed.value == [LIVE]
    assert [e["event"] for e in logs].count("discovery.bad_record") == 2


async def test_etcd_register_after_the_lease_ran_out_grants_a_new_one(etcd: EtcdServer) -> None:
    """A register after the process's lease ran out (paused past its TTL; revoked here)
    succeeds under a new lease and puts the instances it owned back, instead of failing
    with 'lease not found' until the next keep-alive."""
    backend = EtcdBackend(etcd.url, ttl=30, prefix=f"/l-{uuid.uuid4().hex[:8]}")
    second = ServiceInstance(id="o-2", name="orders", url="http://127.0.0.1:9002")
    try:
        assert (await backend.register(LIVE)).is_success
        await backend._call("/v3/lease/revoke", {"ID": backend._lease})
        registered = await backend.register(second)
        listed = await backend.list("orders")
    finally:
        await backend.aclose()
    assert registered.is_success, registered.error
    assert sorted(i.id for i in listed.value) == ["o-1", "o-2"]


async def test_probe_of_a_200_with_a_huge_body_passes_without_reading_it(
    fault: FaultServer,
) -> None:
    """A health endpoint answering 200 with a body far past the transport's buffered
    limit passes its probe: the status decides, the body is not read whole."""
    registry = ServiceRegistry()
    await registry.register("orders", ServiceInstance(id="big", name="orders", url=fault.url))
    config = HealthCheckConfig(path="/bytes/4194304", timeout=30.0)
    transport = AiohttpTransport(PoolConfig(), TimeoutConfig.of(30.0), max_response_size=1024)
    try:
        assert await probe_once(registry, config, transport) == 1
    finally:
        await transport.aclose()
        await registry.aclose()
    assert registry.probe_counts() == {("orders", "big", True): 1}
