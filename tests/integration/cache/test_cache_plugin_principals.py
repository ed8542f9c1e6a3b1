"""A private CachePlugin speaking for several principals: an unsafe request by one of them
invalidates the URL for all (RFC 9111 §4.4), on every backend, against a real origin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest

from flext_api.cache import BackendUsage, CacheBackend, CachePlugin, FlextApiCache, MemoryBackend
from flext_api.cache._backend import Stored
from flext_api.client import FlextApiClient
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration


class Counting:
    """A backend that records the name of every call it passes on to ``inner``."""

    def __init__(self, inner: CacheBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[str] = []

    async def get(self, key: str) -> Stored | None:
        self.calls.append("get")
        return await self.inner.get(key)

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        self.calls.append("set")
        await self.inner.set(key, data, ttl)

    async def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return await self.inner.delete(key)

    async def clear(self) -> None:
        await self.inner.clear()

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        self.calls.append("get_many")
        return await self.inner.get_many(keys)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        self.calls.append("set_many")
        await self.inner.set_many(items, ttl)

    async def usage(self) -> BackendUsage:
        return await self.inner.usage()

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(params=["memory", "redis", "filesystem"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlextApiCache]:
    """A cache on each backend the plugin takes (Redis: a prefix of this test's own)."""
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        config = {"url": redis.url, "prefix": f"t:{uuid.uuid4().hex[:8]}:"}
        cache = FlextApiCache("redis", config)
    elif request.param == "filesystem":
        cache = FlextApiCache("filesystem", {"path": str(tmp_path / "http-cache")})
    else:
        cache = FlextApiCache("memory")
    async with cache:
        yield cache


class Item:
    """An origin resource whose version every POST/PUT bumps; GETs may be cached 60 s."""

    def __init__(self, fault: FaultServer, path: str) -> None:
        self.path = path
        self.version = 1
        self.route = fault.add_route(rf"{path}(\?.*)?$", self._handle)

    async def _handle(self, req: Request, w: ResponseWriter) -> None:
        if req.method in ("POST", "PUT"):
            self.version += 1
            headers = [(k[2:], v) for k, v in _query(req.target).items() if k.startswith("h-")]
            await w.send_json({"v": self.version}, headers=headers)
            return
        body = {"v": self.version, "for": req.header("authorization")}
        await w.send_json(body, headers=[("Cache-Control", "max-age=60")])


def _query(target: str) -> dict[str, str]:
    _, _, query = target.partition("?")
    return dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)


def _as(principal: str | None) -> dict[str, str]:
    return {} if principal is None else {"Authorization": f"Bearer {principal}"}


async def _version(client: FlextApiClient, path: str, principal: str | None) -> tuple[int, bool]:
    result = await client.get(path, headers=_as(principal))
    return result.value.json()["v"], result.value.from_cache


async def test_a_post_by_one_principal_invalidates_every_principals_copy(
    fault: FaultServer, store: FlextApiCache
) -> None:
    """A and B each have /item stored; A POSTs /item; B's next GET reaches the origin and
    sees the new version. The private cache deleted only A's copy, so B kept the old one."""
    item = Item(fault, f"/principals-{uuid.uuid4().hex[:8]}")
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(store)]) as client:
            assert await _version(client, item.path, "a") == (1, False)
            assert await _version(client, item.path, "b") == (1, False)
            assert await _version(client, item.path, "b") == (1, True)
            assert (await client.post(item.path, headers=_as("a"))).is_success
            b_after = await _version(client, item.path, "b")
            a_after = await _version(client, item.path, "a")
            b_again = await _version(client, item.path, "b")
    finally:
        fault.remove_route(item.route)
    assert b_after == (2, False)
    assert a_after == (2, False)
    assert b_again == (2, True)  # stored again after the invalidation


async def test_an_anonymous_post_invalidates_the_principals_copies(
    fault: FaultServer, store: FlextApiCache
) -> None:
    """An unsafe request without credentials invalidates what principals stored too."""
    item = Item(fault, f"/principals-{uuid.uuid4().hex[:8]}")
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(store)]) as client:
            await _version(client, item.path, "a")
            await _version(client, item.path, None)
            assert (await client.post(item.path)).is_success
            after = [await _version(client, item.path, p) for p in ("a", None)]
    finally:
        fault.remove_route(item.route)
    assert after == [(2, False), (2, False)]


async def test_location_and_content_location_are_invalidated_for_every_principal(
    fault: FaultServer, store: FlextApiCache
) -> None:
    """A POST answered with Location and Content-Location invalidates those URLs for B too."""
    tag = uuid.uuid4().hex[:8]
    located, content, other = (Item(fault, f"/{name}-{tag}") for name in ("loc", "cloc", "other"))
    poster = Item(fault, f"/collection-{tag}")
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(store)]) as client:
            for item in (located, content, other):
                await _version(client, item.path, "b")
            target = f"{poster.path}?h-Location={located.path}&h-Content-Location={content.path}"
            assert (await client.post(target, headers=_as("a"))).is_success
            after = [(await _version(client, i.path, "b"))[1] for i in (located, content, other)]
    finally:
        for item in (located, content, other, poster):
            fault.remove_route(item.route)
    assert after == [False, False, True]


async def test_any_number_of_principals_is_invalidated(
    fault: FaultServer, store: FlextApiCache
) -> None:
    """Seventy principals with a stored copy: one POST voids every copy (no per-URL bound)."""
    item = Item(fault, f"/principals-{uuid.uuid4().hex[:8]}")
    principals = [f"p{i}" for i in range(70)]
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(store)]) as client:
            for principal in principals:
                await _version(client, item.path, principal)
            before = [(await _version(client, item.path, p))[1] for p in principals]
            await client.put(item.path, headers=_as("p0"))
            after = [await _version(client, item.path, p) for p in principals]
    finally:
        fault.remove_route(item.route)
    assert all(before)
    assert after == [(2, False)] * len(principals)


async def test_a_hit_is_one_backend_read(fault: FaultServer) -> None:
    """A principal's hit and an anonymous hit each cost one backend call."""
    backend = Counting(MemoryBackend())
    item = Item(fault, f"/principals-{uuid.uuid4().hex[:8]}")
    try:
        async with FlextApiClient(
            base_url=fault.url, plugins=[CachePlugin(FlextApiCache(backend))]
        ) as client:
            for principal in ("a", None):
                await _version(client, item.path, principal)
                backend.calls.clear()
                assert (await _version(client, item.path, principal))[1] is True
                assert len(backend.calls) == 1, (principal, backend.calls)
    finally:
        fault.remove_route(item.route)


async def test_storing_a_principals_answer_adds_one_write_on_the_first_miss(
    fault: FaultServer,
) -> None:
    """The guard is written once per URL (on the first principal's miss), not per store."""
    backend = Counting(MemoryBackend())
    item = Item(fault, f"/principals-{uuid.uuid4().hex[:8]}")
    try:
        async with FlextApiClient(
            base_url=fault.url, plugins=[CachePlugin(FlextApiCache(backend))]
        ) as client:
            await _version(client, item.path, "a")
            first = list(backend.calls)
            backend.calls.clear()
            await _version(client, item.path, "b")
            second = list(backend.calls)
    finally:
        fault.remove_route(item.route)
    assert first == ["get_many", "set", "get_many", "set"]
    assert second == ["get_many", "get_many", "set"]
