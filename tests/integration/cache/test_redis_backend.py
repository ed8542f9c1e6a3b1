"""RedisBackend against a real redis-server: TTLs, prefixes, sharing between processes."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from flext_api import ErrorCode, FlextApiError
from flext_api.cache import AsyncSmartCache, FlextApiCache, RedisBackend
from tests.servers.redis_server import RedisServer

from ._subprocess import run_python

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    """A prefix of its own for each test: the Redis server is shared by the session."""
    return f"t:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def cache(redis_server: RedisServer, prefix: str) -> AsyncIterator[FlextApiCache]:
    async with FlextApiCache("redis", {"url": redis_server.url, "prefix": prefix}) as c:
        yield c


async def test_round_trip_with_ttl(cache: FlextApiCache) -> None:
    """Values come back with their remaining TTL; bytes and JSON are kept apart."""
    await cache.set("j", {"a": [1, 2]}, ttl=60)
    await cache.set("b", b"raw")
    value, ttl = await cache.get_with_ttl("j") or (None, None)
    assert value == {"a": [1, 2]}
    assert ttl is not None and 59 < ttl <= 60
    assert await cache.get_with_ttl("b") == (b"raw", None)
    assert await cache.get("missing") is None


async def test_redis_expires_entries(cache: FlextApiCache) -> None:
    """An entry set with a TTL disappears from Redis when it runs out."""
    await cache.set("short", 1, ttl=0.05)
    await asyncio.sleep(0.2)
    assert await cache.get("short") is None


async def test_many_delete_and_stats(cache: FlextApiCache) -> None:
    """get_many/set_many/delete work in one round trip each; stats counts this prefix."""
    await cache.set_many({"a": 1, "b": 2, "c": 3}, ttl=60)
    assert await cache.get_many(["a", "c", "zz"]) == {"a": 1, "c": 3}
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert await cache.get_many([]) == {}
    await cache.set_many({})
    stats = await cache.stats()
    assert stats.backend == "redis"
    assert stats.entries == 2


async def test_clear_only_touches_its_prefix(
    redis_server: RedisServer, cache: FlextApiCache
) -> None:
    """clear() deletes this cache's keys and leaves other keys in the database."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.set("foreign:key", b"keep")
        await cache.set_many({f"k{i}": i for i in range(1200)})
        await cache.clear()
        assert (await cache.stats()).entries == 0
        assert await client.get("foreign:key") == b"keep"
    finally:
        await client.delete("foreign:key")
        await client.aclose()


async def test_glob_characters_in_prefix_are_literal(redis_server: RedisServer) -> None:
    """A prefix with * or [ does not make clear() delete other caches' keys."""
    url = redis_server.url
    async with (
        FlextApiCache("redis", {"url": url, "prefix": "p*[x]:"}) as odd,
        FlextApiCache("redis", {"url": url, "prefix": "pother:"}) as other,
    ):
        await odd.set("a", 1)
        await other.set("b", 2)
        await odd.clear()
        assert await other.get("b") == 2
        await other.clear()


async def test_corrupt_value_is_a_logged_miss(redis_server: RedisServer, prefix: str) -> None:
    """Bytes in Redis that are not ours are a miss (logged), never an exception."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.set(prefix + "bad", b"\xff not a value")
        async with FlextApiCache("redis", {"url": redis_server.url, "prefix": prefix}) as cache:
            with capture_logs() as logs:
                assert await cache.get("bad") is None
        assert logs[0]["event"] == "cache.corrupt_value"
        assert await client.get(prefix + "bad") is None
    finally:
        await client.aclose()


async def test_unreachable_redis_is_a_connect_error() -> None:
    """A Redis that refuses connections gives FlextApiError CONNECT_ERROR."""
    async with FlextApiCache(
        "redis", {"url": "redis://127.0.0.1:1/0", "socket_timeout": 1}
    ) as cache:
        with pytest.raises(FlextApiError) as info:
            await cache.get("k")
    assert info.value.code is ErrorCode.CONNECT_ERROR


async def test_given_client_is_not_closed(redis_server: RedisServer, prefix: str) -> None:
    """A redis client passed in stays open after the cache closes."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with FlextApiCache(RedisBackend(client=client, prefix=prefix)) as cache:
            await cache.set("k", 1)
        assert await client.ping()
        assert repr(cache.backend) == f"<RedisBackend prefix={prefix!r}>"
    finally:
        await client.aclose()


WRITER = """
import asyncio, sys
from flext_api.cache import FlextApiCache

async def main():
    async with FlextApiCache("redis", {"url": sys.argv[1], "prefix": sys.argv[2]}) as cache:
        await cache.set("from-child", {"pid": "child", "items": [1, 2, 3]}, ttl=60)
        print(await cache.get("from-parent"))

asyncio.run(main())
"""


async def test_two_processes_share_entries(
    cache: FlextApiCache, redis_server: RedisServer, prefix: str
) -> None:
    """A value written by another process is read here, and the other way round."""
    await cache.set("from-parent", "hello child", ttl=60)
    out = await asyncio.to_thread(run_python, WRITER, redis_server.url, prefix)
    assert out.strip() == "hello child"
    assert await cache.get("from-child") == {"pid": "child", "items": [1, 2, 3]}


SMART_CHILD = """
import asyncio, sys
from flext_api.cache import AsyncSmartCache, FlextApiCache

async def main():
    async with FlextApiCache("redis", {"url": sys.argv[1], "prefix": sys.argv[2]}) as shared:
        async with AsyncSmartCache(ttl=60, backend=shared) as cache:
            print(await cache.get_or_compute("report", lambda: {"computed_by": "child"}))

asyncio.run(main())
"""


async def test_smart_cache_shares_computations_between_processes(
    cache: FlextApiCache, redis_server: RedisServer, prefix: str
) -> None:
    """An AsyncSmartCache in another process computes; ours finds the value in Redis."""
    await asyncio.to_thread(run_python, SMART_CHILD, redis_server.url, prefix)
    calls: list[int] = []

    def compute() -> dict[str, str]:
        calls.append(1)
        return {"computed_by": "parent"}

    async with AsyncSmartCache(ttl=60, backend=cache) as smart:
        assert await smart.get_or_compute("report", compute) == {"computed_by": "child"}
        stats = await smart.get_cache_stats()
    assert calls == []
    assert stats["backend_hits"] == 1


async def test_key_of_another_type_is_a_logged_miss(
    redis_server: RedisServer, cache: FlextApiCache, prefix: str
) -> None:
    """A hash under the prefix (not an entry of ours) reads as a miss; set overwrites it."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.hset(f"{prefix}h", mapping={"a": "1"})
        with capture_logs() as logs:
            assert await cache.get("h") is None
            assert await cache.get_many(["h"]) == {}
        assert logs[0]["event"] == "cache.redis.foreign_entry"
        assert (await cache.stats()).corrupt_entries == 2
        await cache.set("h", {"ok": True})
        assert await cache.get("h") == {"ok": True}
    finally:
        await client.aclose()


async def test_huge_ttl_is_stored(cache: FlextApiCache) -> None:
    """A TTL past Redis's expiry range (1e300 s) is kept as a very long expiry, not an error."""
    await cache.set("long", 1, ttl=1e300)
    value, ttl = await cache.get_with_ttl("long") or (None, None)
    assert value == 1
    assert ttl is not None and ttl > 1e15


async def test_key_with_lone_surrogate_round_trips(cache: FlextApiCache) -> None:
    """A key with a lone surrogate is stored as on the other backends, not a UnicodeEncodeError."""
    await cache.set("user:\ud800", "v")
    assert await cache.get("user:\ud800") == "v"
    assert await cache.get_many(["user:\ud800", "user:"]) == {"user:\ud800": "v"}
    assert await cache.delete("user:\ud800") is True


async def test_a_datetime_is_refused_and_nothing_reaches_redis(
    redis_server: RedisServer, cache: FlextApiCache, prefix: str
) -> None:
    """Redis would hold the ISO string and every reader would get a str back: TypeError."""
    with pytest.raises(TypeError, match="datetime"):
        await cache.set("when", {"when": datetime(2024, 1, 1)})
    with pytest.raises(TypeError, match="UUID"):
        await cache.set_many({"ok": 1, "id": uuid.UUID(int=1)})
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.keys(f"{prefix}*") == []
    finally:
        await client.aclose()


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "5"])
def test_a_socket_timeout_that_is_not_finite_seconds_is_refused(
    redis_server: RedisServer, timeout: object
) -> None:
    """With Redis up, such a timeout made every call fail as an outage; now it is CONFIG_ERROR."""
    with pytest.raises(FlextApiError, match="socket_timeout must be") as info:
        FlextApiCache("redis", {"url": redis_server.url, "socket_timeout": timeout})
    assert info.value.code is ErrorCode.CONFIG_ERROR


async def test_a_timedelta_socket_timeout_works(redis_server: RedisServer, prefix: str) -> None:
    """socket_timeout takes seconds or a timedelta, like every other duration of the cache."""
    config = {"url": redis_server.url, "prefix": prefix, "socket_timeout": timedelta(seconds=5)}
    async with FlextApiCache("redis", config) as cache:
        await cache.set("k", 1)
        assert await cache.get("k") == 1


SMART_WHEN_CHILD = """
import asyncio, sys
from datetime import datetime
from flext_api.cache import AsyncSmartCache, FlextApiCache

async def main():
    async with FlextApiCache("redis", {"url": sys.argv[1], "prefix": sys.argv[2]}) as shared:
        async with AsyncSmartCache(ttl=60, backend=shared) as cache:
            value = await cache.get_or_compute("when", lambda: {"when": datetime(2024, 1, 1)})
            print(type(value["when"]).__name__)

asyncio.run(main())
"""


async def test_a_value_with_a_datetime_is_the_same_type_in_every_process(
    cache: FlextApiCache, redis_server: RedisServer, prefix: str
) -> None:
    """It stays local in the process that computed it, so another process computes its own
    datetime instead of reading back the str Redis would have held."""
    out = await asyncio.to_thread(run_python, SMART_WHEN_CHILD, redis_server.url, prefix)
    assert out.strip().splitlines()[-1] == "datetime"  # after its logged warning
    calls: list[int] = []

    def compute() -> dict[str, datetime]:
        calls.append(1)
        return {"when": datetime(2024, 1, 1)}

    async with AsyncSmartCache(ttl=60, backend=cache) as smart:
        value = await smart.get_or_compute("when", compute)
    assert value == {"when": datetime(2024, 1, 1)}
    assert calls == [1]
