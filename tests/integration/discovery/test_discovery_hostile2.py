"""Discovery under hostile conditions, second pass: very large services in Redis, a
registry or backend used after it was closed, and secrets in an etcd URL."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from flext_api._config import PoolConfig, TimeoutConfig
from flext_api._errors import ErrorCode
from flext_api.discovery import (
    EtcdBackend,
    HealthCheckConfig,
    RedisBackend,
    RegistryBackend,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.transports._aiohttp import AiohttpTransport
from tests._poll import eventually
from tests.servers.etcd_server import EtcdServer
from tests.servers.redis_server import RedisServer

from .upstream import Upstream

pytestmark = pytest.mark.integration

INSTANCE = ServiceInstance(id="o-1", name="orders", url="http://127.0.0.1:9001")
#: More ids than Lua's unpack() takes in one call (LUAI_MAXCSTACK is 8000).
MANY = 8001


async def _store_records(redis_url: str, backend: RedisBackend, score: int) -> None:
    """Write MANY instance records of ``orders`` straight into Redis, scored ``score``."""
    members, data, _ = backend._keys("orders")
    client = aioredis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for k in range(MANY):
            inst = ServiceInstance(id=f"o-{k}", name="orders", url=f"http://127.0.0.1:{1024 + k}")
            pipe.zadd(members, {inst.id: score})
            pipe.hset(data, inst.id, json.dumps(inst.to_dict()))
        await pipe.execute()
    finally:
        await client.aclose()


async def test_redis_lists_a_service_larger_than_one_lua_unpack(
    redis_server: RedisServer,
) -> None:
    """A service of more than 8,000 live instances is listed whole, not refused forever."""
    backend = RedisBackend(redis_server.url, ttl=5, prefix=f"big-{uuid.uuid4().hex[:8]}")
    await _store_records(redis_server.url, backend, score=2**50)  # expires in 35,000 years
    listed = await backend.list("orders")
    await backend.aclose()
    assert listed.is_success, listed.error
    assert len(listed.value) == MANY


async def test_redis_mass_expiry_drops_every_record(redis_server: RedisServer) -> None:
    """More than 8,000 instances expiring at once are removed with their records."""
    backend = RedisBackend(redis_server.url, ttl=5, prefix=f"exp-{uuid.uuid4().hex[:8]}")
    await _store_records(redis_server.url, backend, score=1)  # long expired
    listed = await backend.list("orders")
    client = aioredis.Redis.from_url(redis_server.url)
    left = await client.hlen(backend._keys("orders")[1])
    await client.aclose()
    await backend.aclose()
    assert listed.is_success, listed.error
    assert listed.value == []
    assert left == 0


def test_etcd_repr_keeps_the_url_password_out() -> None:
    """repr() of an etcd backend names its server without the URL's user info."""
    backend = EtcdBackend("http://root:hunter2@127.0.0.1:2379", ttl=2)
    assert "hunter2" not in repr(backend)
    assert repr(backend) == "<EtcdBackend http://127.0.0.1:2379 ttl=2s [0 instances leased]>"


async def test_closed_etcd_backend_refuses_register_and_keeps_no_lease_alive(
    etcd: EtcdServer,
) -> None:
    """After aclose(), register fails and no keep-alive is started, even on a transport
    the caller still holds open (it would hold the lease, and the instance, forever)."""
    transport = AiohttpTransport(PoolConfig(), TimeoutConfig.of(2.0))
    backend = EtcdBackend(etcd.url, ttl=2, prefix=f"/c-{uuid.uuid4().hex[:8]}", transport=transport)
    try:
        assert (await backend.register(INSTANCE)).is_success
        await backend.aclose()
        again = await backend.register(INSTANCE)
        keepers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "EtcdBackend._keep_alive"
        ]
        for task in keepers:
            task.cancel()
    finally:
        await transport.aclose()
    assert again.error_code is ErrorCode.INVALID_REQUEST
    assert keepers == []


async def test_closed_redis_backend_refuses_every_call(redis_server: RedisServer) -> None:
    """After aclose(), calls fail as closed instead of opening a connection nobody closes."""
    backend = RedisBackend(redis_server.url, ttl=2, prefix=f"c-{uuid.uuid4().hex[:8]}")
    assert (await backend.register(INSTANCE)).is_success
    await backend.aclose()
    for result in (
        await backend.register(INSTANCE),
        await backend.list("orders"),
        await backend.unregister("orders", "o-1"),
    ):
        assert result.error_code is ErrorCode.INVALID_REQUEST
        assert "closed" in str(result.error)
    with pytest.raises(Exception, match="closed"):
        await anext(backend.changes("orders"))


@pytest.mark.parametrize("kind", ["redis", "etcd"])
async def test_refresh_after_close_is_refused_without_calling_the_store(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """refresh() on a closed registry fails as closed: no call reaches the closed backend
    and no 'backend unreachable' warning is logged."""
    prefix = f"r-{uuid.uuid4().hex[:8]}"
    backend: RegistryBackend
    if kind == "redis":
        backend = RedisBackend(request.getfixturevalue("redis_server").url, ttl=2, prefix=prefix)
    else:
        backend = EtcdBackend(request.getfixturevalue("etcd").url, ttl=2, prefix=f"/{prefix}")
    registry = ServiceRegistry(backend)
    async with registry:
        assert (await registry.register("orders", INSTANCE)).is_success
    with capture_logs() as logs:
        refreshed = await registry.refresh("orders")
    assert refreshed.error_code is ErrorCode.INVALID_REQUEST
    assert str(refreshed.error) == "registry is closed"
    assert [e for e in logs if e["event"] == "discovery.backend_unreachable"] == []
    assert registry.instances("orders").value == [INSTANCE]  # the last view stays readable


async def test_health_check_loop_ends_when_the_registry_closes(
    upstreams: list[Upstream],
) -> None:
    """registry.health_check() (the seed's loop) returns once the registry is closed,
    without waiting out its interval."""
    registry = ServiceRegistry(health_check=HealthCheckConfig(interval=3600.0, timeout=5.0))
    up = upstreams[0]
    await registry.register("orders", ServiceInstance(id=up.name, name="orders", url=up.url))
    loop = asyncio.create_task(registry.health_check())
    try:
        assert await eventually(lambda: bool(registry.probe_counts()))  # now in its sleep
        await registry.aclose()
        # A bound against a hang, not a timing check: the loop ends at once.
        async with asyncio.timeout(30):
            await loop
    finally:
        loop.cancel()
    assert registry.probe_counts() == {("orders", up.name, True): 1}
