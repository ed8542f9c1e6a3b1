"""The same registry scenarios on the memory, Redis and etcd backends (real servers)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable

import pytest

from flext_api.discovery import (
    EtcdBackend,
    MemoryBackend,
    RedisBackend,
    RegistryBackend,
    ServiceInstance,
    ServiceRegistry,
)
from tests._poll import eventually
from tests.servers.etcd_server import EtcdServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

BackendFactory = Callable[[], RegistryBackend]


@pytest.fixture(params=["memory", "redis", "etcd"])
def make_backend(request: pytest.FixtureRequest) -> BackendFactory:
    """Makes backends of one kind that share one store (a fresh key prefix per test)."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        shared = MemoryBackend()
        return lambda: shared
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return lambda: RedisBackend(redis.url, ttl=1.5, prefix=prefix)
    etcd: EtcdServer = request.getfixturevalue("etcd")
    return lambda: EtcdBackend(etcd.url, ttl=2, prefix=f"/{prefix}")


def _inst(k: int, **kw: object) -> ServiceInstance:
    return ServiceInstance(id=f"o-{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}", **kw)  # type: ignore[arg-type]


def _ids(registry: ServiceRegistry) -> set[str]:
    return {i.id for i in registry.instances("orders").value}


async def test_registered_instance_is_listed_and_picked(make_backend: BackendFactory) -> None:
    """register -> instances() lists it and get_instance() returns it at once."""
    async with ServiceRegistry(make_backend()) as registry:
        assert (await registry.register("orders", _inst(1))).is_success
        assert _ids(registry) == {"o-1"}
        assert (await registry.get_instance("orders")).value.id == "o-1"


async def test_unregistered_instance_is_gone(make_backend: BackendFactory) -> None:
    """unregister removes the instance from the local view at once."""
    async with ServiceRegistry(make_backend()) as registry:
        await registry.register("orders", _inst(1))
        await registry.register("orders", _inst(2))
        assert (await registry.unregister("orders", "o-1")).is_success
        assert _ids(registry) == {"o-2"}
        assert (await registry.refresh("orders")).value == [_inst(2)]


async def test_registering_an_id_again_updates_it(make_backend: BackendFactory) -> None:
    """The same id with a new weight replaces the stored instance."""
    async with ServiceRegistry(make_backend()) as registry:
        await registry.register("orders", _inst(1))
        await registry.register("orders", _inst(1, weight=5))
        listed = (await registry.refresh("orders")).value
        assert [(i.id, i.weight) for i in listed] == [("o-1", 5)]


async def test_second_registry_sees_the_first_ones_instances(make_backend: BackendFactory) -> None:
    """Two registries on one store see each other's instances."""
    async with ServiceRegistry(make_backend()) as one, ServiceRegistry(make_backend()) as two:
        await one.register("orders", _inst(1))
        assert (await two.get_instance("orders")).is_success or two.backend.shared is False
        await two.register("orders", _inst(2))
        if one.backend.shared:
            assert await eventually(lambda: _ids(one) == {"o-1", "o-2"})
            assert await eventually(lambda: _ids(two) == {"o-1", "o-2"})
        else:
            assert (await one.refresh("orders")).value == [_inst(1), _inst(2)]


async def test_watch_reports_changes(make_backend: BackendFactory) -> None:
    """watch() yields the registration and the removal of an instance."""
    async with ServiceRegistry(make_backend()) as registry:
        (await registry.register("orders", _inst(0))).unwrap()
        changes = registry.watch("orders")
        # watch() subscribes before it yields the current set: once that first change
        # is here, no later change can be missed.
        current = await asyncio.wait_for(anext(changes), 30)
        assert [i.id for i in current.added] == [i.id for i in current.instances] == ["o-0"]
        (await registry.register("orders", _inst(1))).unwrap()
        added = await asyncio.wait_for(anext(changes), 30)
        assert [i.id for i in added.added] == ["o-1"] and not added.removed
        (await registry.unregister("orders", "o-1")).unwrap()
        removed = await asyncio.wait_for(anext(changes), 30)
        assert [i.id for i in removed.removed] == ["o-1"] and not removed.added
        assert [i.id for i in removed.instances] == ["o-0"]
    # Closing the registry ends the watch (and unsubscribes it).
    assert await asyncio.wait_for(anext(changes, None), 30) is None


@pytest.mark.parametrize("kind", ["redis", "etcd"])
async def test_killed_process_instances_expire(
    kind: str, redis_server: RedisServer, etcd: EtcdServer
) -> None:
    """Two processes see each other's instances; kill -9 of one removes its instance
    within the TTL (and a step)."""
    prefix = f"k-{uuid.uuid4().hex[:8]}"
    url = redis_server.url if kind == "redis" else etcd.url
    ttl = 1.5 if kind == "redis" else 2
    backend: RegistryBackend = (
        RedisBackend(url, ttl=ttl, prefix=prefix)
        if kind == "redis"
        else EtcdBackend(url, ttl=int(ttl), prefix=f"/{prefix}")
    )
    args = ["-m", "tests.integration.discovery._registrant", kind, url]
    args += [prefix if kind == "redis" else f"/{prefix}", "w-1", "p-1"]
    loop = asyncio.get_running_loop()
    proc: asyncio.subprocess.Process | None = None
    try:
        async with ServiceRegistry(backend) as registry:
            mine = ServiceInstance(id="p-1", name="orders", url="http://127.0.0.1:8")
            (await registry.register("orders", mine)).unwrap()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"ready"
            # The other process's registration reaches this one's running registry within
            # a heartbeat (ttl / 3), plus room for a busy machine.
            ready_at = loop.time()
            assert await eventually(lambda: _ids(registry) == {"p-1", "w-1"})
            seen_after = loop.time() - ready_at
            assert seen_after <= ttl / 3 + 2.0, f"seen {seen_after:.2f}s after registering"
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"saw p-1"  # and this one's reaches the other process
            killed_at = loop.time()
            proc.kill()
            await proc.wait()
            assert await eventually(lambda: _ids(registry) == {"p-1"})
            # The TTL, plus the store's detection step (a watcher's relist on Redis,
            # etcd's lease checks) and room for a busy machine; a removal that waited
            # for anything but the TTL (a sweep, a restart) would take far longer.
            gone_after = loop.time() - killed_at
            assert gone_after <= ttl + 2.0, f"removed {gone_after:.2f}s after kill -9"
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
