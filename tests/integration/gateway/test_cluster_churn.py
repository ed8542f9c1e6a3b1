"""Clusters under instance churn, against real upstreams on 127.0.0.1: an instance
killed and brought back on its port, all instances down, discovery-backed clusters
whose registry changes while requests run, and reloads that change the instances."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import yaml

from flext_api.discovery import (
    EtcdBackend,
    RedisBackend,
    RegistryBackend,
    ServiceInstance,
    ServiceRegistry,
)
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import HOST, Upstream
from tests.servers.etcd_server import EtcdServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


def _reuse_port(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    return sock


class Revivable:
    """An upstream instance that can be killed and brought back on the same port.

    A socket bound with SO_REUSEPORT and never listening holds the port: while the
    instance is down a connect is refused (not timed out), and no other process can
    take the port meanwhile.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._hold = _reuse_port()
        self.port: int = self._hold.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.current: Upstream | None = None
        self.lives: list[Upstream] = []

    def start(self) -> Revivable:
        upstream = Upstream(self.name)
        upstream._sock.close()
        upstream._sock = _reuse_port(self.port)
        upstream.port = self.port
        self.current = upstream.start()
        self.lives.append(upstream)
        return self

    def kill(self) -> None:
        """Drop every open connection at once (RST), then stop listening."""
        upstream, self.current = self.current, None
        assert upstream is not None and upstream.loop is not None

        async def abort() -> None:
            runner = upstream._runner
            assert runner is not None and runner.server is not None
            for protocol in list(runner.server.connections):
                if protocol.transport is not None:
                    protocol.transport.abort()

        asyncio.run_coroutine_threadsafe(abort(), upstream.loop).result(10)
        upstream.stop()

    def hits(self, path: str) -> int:
        return sum(life.hits(path) for life in self.lives)

    def close(self) -> None:
        if self.current is not None:
            self.kill()
        self._hold.close()


@pytest.fixture
def revivable() -> Iterator[Callable[[str], Revivable]]:
    made: list[Revivable] = []

    def make(name: str) -> Revivable:
        instance = Revivable(name).start()
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    """A real etcd for the module's tests (each test registers its own service)."""
    with EtcdServer() as server:
        yield server


def _cluster_of(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, "clusters": [{**data["clusters"][0], **changes}]}


def _named(*pairs: tuple[str, str], **cluster: Any) -> dict[str, Any]:
    """``basic_config`` with instances ``(id, url)`` and ``cluster`` settings."""
    data = basic_config()
    return _cluster_of(data, instances=[{"id": i, "url": url} for i, url in pairs], **cluster)


# Probes every 0.1 s, one result changes the state; one gateway error ejects for 0.5 s.
_FAST_HEALTH = {
    "interval": 0.1,
    "healthy_threshold": 1,
    "unhealthy_threshold": 1,
    "passive": {"consecutive_gateway_errors": 1, "base_ejection_time": 0.5},
}


async def _instances(gw: LiveGateway) -> dict[str, dict[str, Any]]:
    """``GET /admin/clusters``: the ``svc`` cluster's rows by instance id."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            gw.admin_url + "/admin/clusters", headers={"Authorization": "Bearer t0ken"}
        ) as response,
    ):
        assert response.status == 200
        clusters = await response.json()
    (svc,) = [c for c in clusters if c["name"] == "svc"]
    return {row["id"]: row for row in svc["instances"]}


async def _admin_post(gw: LiveGateway, path: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(gw.admin_url + path, headers={"Authorization": "Bearer t0ken"}) as response,
    ):
        return response.status


async def _answers(session: aiohttp.ClientSession, url: str, n: int) -> list[tuple[int, str]]:
    """``n`` GETs of ``/echo/x``: each one's status and the instance (or reason) that answered."""
    seen = []
    for _ in range(n):
        async with session.get(url + "/echo/x") as response:
            who = response.headers.get("X-Upstream") or response.headers.get("X-Gateway-Reason")
            seen.append((response.status, who or ""))
    return seen


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    """True as soon as ``await condition()`` holds; False after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await condition():
            return True
        await asyncio.sleep(0.02)
    return await condition()


def _reload(gw: LiveGateway, data: dict[str, Any]) -> Any:
    assert gw.reloader is not None
    gw.reloader.path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return gw.call(gw.reloader.reload())


async def test_a_killed_instance_is_ejected_and_taken_back_once_it_answers(
    revivable: Callable[[str], Revivable], run_gateway: Run
) -> None:
    """An instance killed mid-traffic: every GET still gets a 200 (a connect failure is
    retried on the other instance), the admin API shows it ejected or down; brought back
    on its port, it passes a probe and takes its share again."""
    a, b = revivable("a"), revivable("b")
    gw = run_gateway(_named(("a", a.url), ("b", b.url), health=_FAST_HEALTH))
    async with aiohttp.ClientSession() as session:
        assert {who for _, who in await _answers(session, gw.url, 4)} == {"a", "b"}
        b.kill()
        assert await _answers(session, gw.url, 10) == [(200, "a")] * 10
        assert (await _instances(gw))["b"]["state"] in ("ejected", "down")
        b.start()
        assert b.current is not None

        async def b_back() -> bool:
            return bool((await _instances(gw))["b"]["state"] == "up")

        assert await _until(b_back)
        assert sorted({who for _, who in await _answers(session, gw.url, 6)}) == ["a", "b"]


async def test_a_post_on_an_instance_killed_under_it_is_a_502_not_replayed(
    revivable: Callable[[str], Revivable], run_gateway: Run
) -> None:
    """An instance killed while a POST's body and a GET are on it: the POST, whose bytes
    reached it, is a 502 ``upstream_reset`` and never sent to the other instance; the GET
    is retried there and answered."""
    a, b = revivable("a"), revivable("b")
    gw = run_gateway(_named(("a", a.url), ("b", b.url), health={"active": False}))
    assert await _admin_post(gw, "/admin/clusters/svc/instances/a/drain") == 200
    more: asyncio.Queue[bytes] = asyncio.Queue()

    async def body() -> Any:
        yield b"x" * 1000
        yield await more.get()

    async with aiohttp.ClientSession() as session:
        get = asyncio.ensure_future(session.get(gw.url + "/slow?ms=100"))
        post = asyncio.ensure_future(session.post(gw.url + "/upload", data=body()))
        # Both on b: the GET answered-to-be, the POST's first bytes sent.
        in_flight = gw.gateway.snapshot.clusters["svc"].in_flight
        assert await eventually(lambda: in_flight.get("b", 0) == 2)
        assert await _admin_post(gw, "/admin/clusters/svc/instances/a/enable") == 200
        b.kill()
        more.put_nowait(b"y")
        async with asyncio.timeout(30):
            got, sent = await get, await post
        assert got.status == 200
        assert (sent.status, sent.headers.get("X-Gateway-Reason")) == (502, "upstream_reset")
        got.release()
        sent.release()
    assert a.hits("/slow") == 1
    assert a.hits("/upload") == 0


async def test_with_every_instance_down_requests_fail_fast_and_recover(
    revivable: Callable[[str], Revivable], run_gateway: Run
) -> None:
    """Both instances dead: each request is a typed 502/503 at once (no hang), and the
    cluster answers again when one instance comes back."""
    a, b = revivable("a"), revivable("b")
    gw = run_gateway(_named(("a", a.url), ("b", b.url), health=_FAST_HEALTH))
    a.kill()
    b.kill()
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(30):
            failed = await _answers(session, gw.url, 6)
        reasons = {"connect_failure", "breaker_open", "no_healthy_instance"}
        assert all(status in (502, 503) and who in reasons for status, who in failed), failed
        a.start()

        async def answered() -> bool:
            return (await _answers(session, gw.url, 1))[0] == (200, "a")

        assert await _until(answered)


@pytest.fixture(params=["redis", "etcd"])
def registry_backend(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, str, Callable[[], RegistryBackend]]]:
    """A real shared registry: its kind, its URL and a backend factory for it."""
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        yield "redis", redis.url, lambda: RedisBackend(redis.url)
    else:
        server: EtcdServer = request.getfixturevalue("etcd")
        yield "etcd", server.url, lambda: EtcdBackend(server.url)


async def test_a_registry_cluster_follows_instances_added_and_removed(
    upstreams: tuple[Upstream, Upstream],
    run_gateway: Run,
    registry_backend: tuple[str, str, Callable[[], RegistryBackend]],
    request: pytest.FixtureRequest,
) -> None:
    """Instances registered and unregistered in Redis or etcd while requests run: a new
    one gets requests, a removed one gets no new request while its SSE stream goes on to
    its end."""
    a, b = upstreams
    c = Upstream("c").start()
    request.addfinalizer(c.stop)
    kind, url, backend = registry_backend
    service = f"churn-{kind}-{uuid.uuid4().hex[:8]}"
    data = _cluster_of(
        basic_config(),
        instances=[],
        registry={"backend": kind, "url": url, "service": service},
        health={"active": False},
    )
    del data["clusters"][0]["instances"]
    async with ServiceRegistry(backend()) as registry:
        for up in (a, b):
            instance = ServiceInstance(id=up.name, name=service, url=up.url)
            (await registry.register(service, instance)).unwrap()
        gw = run_gateway(data)
        async with aiohttp.ClientSession() as session:
            assert sorted({w for _, w in await _answers(session, gw.url, 4)}) == ["a", "b"]
            stream = await session.get(gw.url + "/sse")
            assert await eventually(lambda: a.hits("/sse") + b.hits("/sse") == 1)
            on, other = (a, b) if a.hits("/sse") else (b, a)
            instance = ServiceInstance(id="c", name=service, url=c.url)
            (await registry.register(service, instance)).unwrap()

            async def c_in() -> bool:
                return "c" in {w for _, w in await _answers(session, gw.url, 3)}

            assert await _until(c_in)
            (await registry.unregister(service, on.name)).unwrap()

            async def on_out() -> bool:
                return on.name not in {w for _, w in await _answers(session, gw.url, 6)}

            assert await _until(on_out)
            assert sorted({w for _, w in await _answers(session, gw.url, 6)}) == sorted(
                [other.name, "c"]
            )
            on.release("still")
            async with asyncio.timeout(30):
                assert await stream.content.readuntil(b"\n\n") == b"data: still\n\n"
                on.release("end")
                assert await stream.content.read() == b""
            stream.release()


async def test_in_flight_counts_survive_a_reload(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A stream begun before a reload that adds an instance still counts as in flight on
    its instance in ``/admin/clusters`` (the new cluster started from zero), and the count
    goes back to zero when it ends."""
    a, b = upstreams
    data = _named(("a", a.url), health={"active": False})
    gw = run_gateway(data)
    async with aiohttp.ClientSession() as session:
        stream = await session.get(gw.url + "/sse")
        assert await eventually(lambda: a.hits("/sse") == 1)
        assert (await _instances(gw))["a"]["in_flight"] == 1
        assert _reload(gw, _named(("a", a.url), ("b", b.url), health={"active": False})).is_success
        rows = await _instances(gw)
        assert (rows["a"]["in_flight"], rows["b"]["in_flight"]) == (1, 0)
        a.release("end")
        async with asyncio.timeout(30):
            assert await stream.content.read() == b""
        stream.release()
    rows = await _instances(gw)
    assert (rows["a"]["in_flight"], rows["b"]["in_flight"]) == (0, 0)


async def test_a_reload_dropping_a_cluster_a_route_names_is_refused(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A reload that renames the only cluster away from the route's name is refused with
    an error naming the route and the cluster; the running cluster keeps serving."""
    a, _ = upstreams
    data = _named(("a", a.url), health={"active": False})
    gw = run_gateway(data)
    refused = _reload(gw, _cluster_of(data, name="other"))
    assert refused.is_failure
    assert "route 'all' names cluster 'svc', which is not defined" in str(refused.error)
    async with aiohttp.ClientSession() as session:
        assert await _answers(session, gw.url, 2) == [(200, "a")] * 2


async def test_weights_hold_after_an_instance_leaves_and_comes_back(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Round robin, weights 3:1: after the light instance is drained and enabled again, and after a
    reload removes it and one adds it back with the same id, the shares are 3:1 again
    (neither instance starved nor counted twice)."""
    a, b = upstreams
    pairs = [{"id": "a", "url": a.url, "weight": 3}, {"id": "b", "url": b.url}]
    data = _cluster_of(basic_config(), instances=pairs, health={"active": False})
    gw = run_gateway(data)

    async def shares(session: aiohttp.ClientSession) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, who in await _answers(session, gw.url, 40):
            counts[who] = counts.get(who, 0) + 1
        return counts

    async with aiohttp.ClientSession() as session:
        assert await shares(session) == {"a": 30, "b": 10}
        assert await _admin_post(gw, "/admin/clusters/svc/instances/b/drain") == 200
        assert await shares(session) == {"a": 40}
        assert await _admin_post(gw, "/admin/clusters/svc/instances/b/enable") == 200
        assert await shares(session) == {"a": 30, "b": 10}
        assert _reload(gw, _cluster_of(data, instances=pairs[:1])).is_success
        assert await shares(session) == {"a": 40}
        assert _reload(gw, data).is_success
        assert await shares(session) == {"a": 30, "b": 10}
