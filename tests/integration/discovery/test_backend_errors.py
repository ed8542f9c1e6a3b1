"""Redis and etcd backends when things go wrong: bad settings, no server, bad records."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from flext_api._errors import ConfigError, ErrorCode, FlextApiError
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
from tests.servers.fault import FaultServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

INSTANCE = ServiceInstance(id="o-1", name="orders", url="http://127.0.0.1:9001")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _events(logs: list[MutableMapping[str, Any]]) -> list[object]:
    return [entry["event"] for entry in logs]


@pytest.mark.parametrize(
    "kwargs", [{"ttl": 0}, {"ttl": 2, "heartbeat": 2}, {"ttl": 2, "poll_interval": 0}]
)
def test_redis_backend_rejects_bad_timing(kwargs: dict[str, Any]) -> None:
    """A non-positive TTL, a heartbeat not below it or a zero poll is a ConfigError."""
    with pytest.raises(ConfigError):
        RedisBackend("redis://127.0.0.1:1/0", **kwargs)


@pytest.mark.parametrize("kind", ["redis", "etcd"])
async def test_backend_without_server_fails_each_call(kind: str) -> None:
    """No server listening: register, unregister and list fail with CONNECT_ERROR."""
    port = _closed_port()
    backend: RegistryBackend = (
        RedisBackend(f"redis://127.0.0.1:{port}/0", ttl=1.0)
        if kind == "redis"
        else EtcdBackend(f"http://127.0.0.1:{port}", ttl=2)
    )
    for result in (
        await backend.register(INSTANCE),
        await backend.unregister("orders", "o-1"),
        await backend.list("orders"),
    ):
        assert result.error_code is ErrorCode.CONNECT_ERROR
    await backend.aclose()


async def test_redis_watch_without_server_raises_unreachable() -> None:
    """changes() raises CONNECT_ERROR when the pub/sub connection cannot be made."""
    backend = RedisBackend(f"redis://127.0.0.1:{_closed_port()}/0", ttl=1.0)
    changes = backend.changes("orders")
    with pytest.raises(Exception, match="unreachable") as info:
        await anext(changes)
    assert getattr(info.value, "code", None) is ErrorCode.CONNECT_ERROR
    await changes.aclose()
    await backend.aclose()


async def test_redis_bad_record_is_skipped(redis_server: RedisServer) -> None:
    """A record that is not an instance is logged and left out; the rest is listed."""
    prefix = f"b-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_server.url)
    backend = RedisBackend(ttl=5.0, prefix=prefix, client=client)
    await backend.register(INSTANCE)
    await client.zadd(f"{prefix}:orders:members", {"junk": 1e15})
    await client.hset(f"{prefix}:orders:data", "junk", "{not json")
    with capture_logs() as logs:
        listed = (await backend.list("orders")).value
    assert listed == [INSTANCE]
    assert "discovery.bad_record" in _events(logs)
    assert "1 instances kept alive" in repr(backend)
    await backend.aclose()
    assert await client.ping()  # a client passed in is not closed by the backend
    await client.aclose()


async def test_redis_heartbeat_reports_failure_once_and_recovers(own_redis: RedisServer) -> None:
    """Redis down: one heartbeat warning; back (empty): the instance is put back."""
    backend = RedisBackend(own_redis.url, ttl=0.6, prefix="hb")
    await backend.register(INSTANCE)
    with capture_logs() as logs:
        own_redis.pause()
        assert await eventually(lambda: "discovery.heartbeat_failed" in _events(logs))
        own_redis.restart()
        assert await eventually(lambda: "discovery.heartbeat_recovered" in _events(logs))
    assert (await backend.list("orders")).value == [INSTANCE]
    assert _events(logs).count("discovery.heartbeat_failed") == 1
    await backend.aclose()


def test_etcd_backend_rejects_a_bad_ttl() -> None:
    """etcd leases are whole seconds >= 1."""
    with pytest.raises(ConfigError):
        EtcdBackend(ttl=0)


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (lambda: RedisBackend("http://:secret@127.0.0.1:6379"), "'http://127.0.0.1:6379'"),
        (lambda: EtcdBackend("redis://u:secret@127.0.0.1:2379"), "'redis://127.0.0.1:2379'"),
        (lambda: EtcdBackend("http://"), "'http://'"),
    ],
)
def test_a_backend_url_of_another_kind_is_a_config_error(
    make: Callable[[], object], shown: str
) -> None:
    """A URL the backend cannot talk to is a ConfigError naming it without its password
    (redis-py raised a bare ValueError; etcd took any URL and failed on each call)."""
    with pytest.raises(ConfigError) as caught:
        make()
    assert shown in str(caught.value) and "secret" not in str(caught.value)


async def test_etcd_error_status_is_a_failure(fault: FaultServer) -> None:
    """A gateway answering 404 is a CONNECT_ERROR naming the status; so is its watch."""
    backend = EtcdBackend(f"{fault.url}/status/404?to=", ttl=2)
    listed = await backend.list("orders")
    assert listed.error_code is ErrorCode.CONNECT_ERROR and "404" in (listed.error or "")
    changes = backend.changes("orders")
    with pytest.raises(Exception, match="404"):
        await anext(changes)
    await changes.aclose()
    await backend.aclose()


@pytest.mark.parametrize("line", [b"[1]", b'"text"', b'{"result": [1]}'])
async def test_etcd_watch_line_that_is_not_an_object_is_a_decode_error(
    fault: FaultServer, line: bytes
) -> None:
    """Valid JSON of another shape on the watch stream was an AttributeError out of the
    backend (the registry's follow loop died on it); it is DECODE_ERROR, as bad JSON is."""
    path = f"/etcd-shape-{line.hex()}"

    async def watch(request: Any, response: Any) -> None:
        await response.send(200, line + b"\n", content_type="application/json")

    route = fault.add_route(f"{path}/v3/watch", watch)
    backend = EtcdBackend(f"{fault.url}{path}", ttl=2)
    changes = backend.changes("orders")
    try:
        with pytest.raises(FlextApiError) as info:
            await anext(changes)
        assert info.value.code is ErrorCode.DECODE_ERROR
    finally:
        await changes.aclose()
        await backend.aclose()
        fault.remove_route(route)


async def _put_raw(backend: EtcdBackend, key: str, value: str) -> None:
    encode = base64.b64encode
    body = {"key": encode(key.encode()).decode(), "value": encode(value.encode()).decode()}
    await backend._call("/v3/kv/put", body)


async def test_etcd_bad_record_is_skipped(etcd: EtcdServer) -> None:
    """A value that is not an instance is logged and left out."""
    prefix = f"/b-{uuid.uuid4().hex[:8]}"
    backend = EtcdBackend(etcd.url, ttl=2, prefix=prefix)
    await backend.register(INSTANCE)
    await _put_raw(backend, f"{prefix}/orders/junk", "{not json")
    with capture_logs() as logs:
        listed = (await backend.list("orders")).value
    assert listed == [INSTANCE] and "discovery.bad_record" in _events(logs)
    assert "1 instances leased" in repr(backend)
    await backend.aclose()


_WRONG_TYPES = [
    {"id": "junk", "name": "orders", "url": "http://127.0.0.1:9002", "health": ["healthy"]},
    {"id": "junk", "name": "orders", "url": "http://127.0.0.1:9002", "health": {"a": 1}},
]


@pytest.mark.parametrize("kind", ["redis", "etcd"])
@pytest.mark.parametrize("record", _WRONG_TYPES)
async def test_record_with_a_field_of_the_wrong_type_is_skipped(
    kind: str, record: dict[str, Any], etcd: EtcdServer, request: pytest.FixtureRequest
) -> None:
    """A JSON record whose health is a list or an object (another process's bug) was a
    TypeError out of list(): the registry's refresh raised and its follow loop marked
    the service stale for as long as the record stayed. It is logged and left out."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    value = json.dumps(record)
    backend: RedisBackend | EtcdBackend
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = aioredis.Redis.from_url(server.url)
        backend = RedisBackend(ttl=5.0, prefix=prefix, client=client)
        await backend.register(INSTANCE)
        await client.zadd(f"{prefix}:orders:members", {"junk": 1e15})
        await client.hset(f"{prefix}:orders:data", "junk", value)
    else:
        backend = EtcdBackend(etcd.url, ttl=2, prefix=f"/{prefix}")
        await backend.register(INSTANCE)
        await _put_raw(backend, f"/{prefix}/orders/junk", value)
    registry = ServiceRegistry(backend)
    try:
        with capture_logs() as logs:
            listed = await registry.refresh("orders")
        assert listed.value == [INSTANCE]
        assert "discovery.bad_record" in _events(logs)
        assert not registry.stats()["services"]["orders"]["stale"]
    finally:
        await registry.aclose()
        if kind == "redis":
            await client.aclose()


async def test_etcd_watch_cancelled_by_compaction_ends_the_stream(etcd: EtcdServer) -> None:
    """A watch from a revision etcd has compacted away is cancelled by etcd, which keeps
    the response open: the backend yielded once, then waited on it for good (no change
    reached the registry again). It ends the stream after that yield, so the registry
    lists and watches afresh."""
    prefix = f"/c-{uuid.uuid4().hex[:8]}"
    backend = EtcdBackend(etcd.url, ttl=5, prefix=prefix)
    await backend.register(INSTANCE)
    await backend.list("orders")  # the watch will start after this listing's revision
    for k in range(3):
        other = ServiceInstance(id=f"o-{k + 2}", name="orders", url="http://127.0.0.1:9002")
        await backend.register(other)
    header = (await backend._call("/v3/kv/range", backend._range("orders")))["header"]
    await backend._call("/v3/kv/compaction", {"revision": header["revision"]})
    changes = backend.changes("orders")
    try:
        await anext(changes)  # the compaction: list again
        async with asyncio.timeout(30):  # a guard against the old hang, not a measure
            with pytest.raises(StopAsyncIteration):
                await anext(changes)
    finally:
        await changes.aclose()
        await backend.aclose()


async def test_etcd_lost_lease_is_granted_again(etcd: EtcdServer) -> None:
    """A revoked lease (its keys gone) is replaced and the instances put back."""
    prefix = f"/l-{uuid.uuid4().hex[:8]}"
    backend = EtcdBackend(etcd.url, ttl=2, prefix=prefix)
    await backend.register(INSTANCE)
    await backend._call("/v3/lease/revoke", {"ID": backend._lease})
    assert (await backend.list("orders")).value == []
    await backend._renew()
    assert (await backend.list("orders")).value == [INSTANCE]
    await backend.aclose()


async def test_etcd_keepalive_reports_failure_once_and_recovers(own_etcd: EtcdServer) -> None:
    """etcd down: one keep-alive warning; back: keep-alives succeed again."""
    backend = EtcdBackend(own_etcd.url, ttl=1, prefix="/ka")
    await backend.register(INSTANCE)
    with capture_logs() as logs:
        own_etcd.pause()
        assert await eventually(lambda: "discovery.keepalive_failed" in _events(logs))
        own_etcd.restart()
        assert await eventually(lambda: "discovery.keepalive_recovered" in _events(logs))
    assert _events(logs).count("discovery.keepalive_failed") == 1
    assert (await backend.list("orders")).value == [INSTANCE]
    await backend.aclose()


async def test_memory_backend_signals_changes() -> None:
    """MemoryBackend.changes() wakes on a registration; repr counts instances."""
    backend = MemoryBackend()
    changes = backend.changes("orders")
    waiter = asyncio.create_task(anext(changes))
    await asyncio.sleep(0)
    await backend.register(INSTANCE)
    await asyncio.wait_for(waiter, 5)
    await backend.unregister("orders", "o-1")
    await backend.unregister("orders", "o-1")
    await changes.aclose()
    await backend.aclose()
    assert repr(backend) == "<MemoryBackend [1 services, 0 instances]>"
    assert json.dumps(INSTANCE.to_dict())
