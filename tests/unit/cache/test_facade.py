"""FlextApiCache: one API over the backends, TTLs, serialization errors, stats, config errors."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from flext_api import ErrorCode, FlextApiError
from flext_api.cache import (
    BackendUsage,
    CacheBackend,
    FilesystemBackend,
    FlextApiCache,
    MemoryBackend,
    _facade,
    register_backend,
)
from flext_api.testing import FakeClock


async def test_memory_is_the_default_backend() -> None:
    """FlextApiCache() stores in memory with CacheConfig's max_entries."""
    async with FlextApiCache() as cache:
        assert isinstance(cache.backend, MemoryBackend)
        assert cache.backend.max_entries == 10_000


async def test_get_set_round_trip() -> None:
    """A JSON value and a bytes value come back as stored; a miss returns the default."""
    cache = FlextApiCache()
    await cache.set("j", {"a": 1})
    await cache.set("b", b"\x00\x01")
    assert await cache.get("j") == {"a": 1}
    assert await cache.get("b") == b"\x00\x01"
    assert await cache.get("missing", "dflt") == "dflt"


async def test_returned_values_are_copies() -> None:
    """Mutating a value read back never changes the stored one."""
    cache = FlextApiCache()
    await cache.set("k", [1])
    got = await cache.get("k")
    got.append(2)
    assert await cache.get("k") == [1]


async def test_default_ttl_and_per_call_ttl() -> None:
    """default_ttl applies unless set() passes its own ttl (seconds or timedelta)."""
    clock = FakeClock()
    cache = FlextApiCache("memory", {"default_ttl": 10}, clock=clock)
    await cache.set("default", 1)
    await cache.set("short", 1, ttl=timedelta(seconds=2))
    value, ttl = await cache.get_with_ttl("short") or (None, None)
    assert (value, ttl) == (1, 2.0)
    clock.advance(5)
    assert await cache.get("short") is None
    assert await cache.get("default") == 1
    clock.advance(5)
    assert await cache.get("default") is None


async def test_unserializable_value_is_a_type_error_at_set() -> None:
    """set() of a value that is neither bytes nor JSON-able raises TypeError and stores nothing."""
    cache = FlextApiCache()
    with pytest.raises(TypeError, match="cannot cache the value for key 'k'"):
        await cache.set("k", {1, 2})
    with pytest.raises(TypeError):
        await cache.set_many({"ok": 1, "bad": object()})
    assert await cache.get_many(["k", "ok", "bad"]) == {}


@pytest.mark.parametrize("backend", ["memory", "filesystem"])
async def test_values_that_come_back_as_another_type_are_refused_on_every_backend(
    backend: str, tmp_path: Path
) -> None:
    """A datetime, UUID or Enum is a TypeError at set, on every backend, and nothing is stored.

    Stored as orjson writes them, they would be read back as str: set() and get() disagree.
    """
    config = {"path": str(tmp_path)} if backend == "filesystem" else {}
    cache = FlextApiCache(backend, config)
    for value in (
        {"when": datetime(2024, 1, 1)},
        {"id": uuid.UUID(int=7)},
        [ErrorCode.HTTP_STATUS],
    ):
        with pytest.raises(TypeError, match="cannot cache the value for key 'k'"):
            await cache.set("k", value)
        with pytest.raises(TypeError, match="cannot cache the value for key 'k'"):
            await cache.set_many({"ok": 1, "k": value})
    assert (await cache.stats()).entries == 0


async def test_many_operations_and_stats() -> None:
    """get_many/set_many/delete/clear update the counters that stats() reports."""
    cache = FlextApiCache()
    await cache.set_many({"a": 1, "b": 2})
    assert await cache.get_many(["a", "b", "c", "a"]) == {"a": 1, "b": 2}
    assert await cache.delete("a") is True
    stats = await cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (2, 1, 2, 1)
    assert stats.entries == 1
    assert stats.hit_rate == pytest.approx(2 / 3)
    assert stats.as_dict()["backend"] == "memory"
    await cache.clear()
    assert (await cache.stats()).entries == 0


async def test_corrupt_value_is_a_logged_miss() -> None:
    """Bytes that do not decode are logged, removed and reported as a miss."""
    cache = FlextApiCache()
    await cache.backend.set("k", b"?garbage", None)
    with capture_logs() as logs:
        assert await cache.get("k") is None
        await cache.backend.set("m", b"?garbage", None)
        assert await cache.get_many(["m"]) == {}
    assert [e["event"] for e in logs] == ["cache.corrupt_value", "cache.corrupt_value"]
    assert await cache.backend.get("k") is None
    assert (await cache.stats()).corrupt_entries == 2


async def test_filesystem_backend_by_name(tmp_path: Path) -> None:
    """backend="filesystem" builds a FilesystemBackend rooted at config['path']."""
    cache = FlextApiCache("filesystem", {"path": tmp_path, "max_bytes": 1000})
    assert isinstance(cache.backend, FilesystemBackend)
    await cache.set("k", "v")
    assert await cache.get("k") == "v"


def test_unknown_backend_is_a_config_error() -> None:
    """An unknown backend name is a CONFIG_ERROR listing the known ones."""
    with pytest.raises(FlextApiError, match="unknown cache backend 'mongo'") as info:
        FlextApiCache("mongo")
    assert info.value.code is ErrorCode.CONFIG_ERROR


def test_unknown_config_key_is_a_config_error() -> None:
    """A config key the backend does not take is a CONFIG_ERROR naming it."""
    with pytest.raises(FlextApiError, match=r"unknown config .* \['max_entriez'\]") as info:
        FlextApiCache("memory", {"max_entriez": 3})
    assert info.value.code is ErrorCode.CONFIG_ERROR


def test_filesystem_without_path_is_a_config_error() -> None:
    """The filesystem backend needs a path."""
    with pytest.raises(FlextApiError, match="needs config\\['path'\\]"):
        FlextApiCache("filesystem")


def test_invalid_config_value_is_a_config_error() -> None:
    """A backend that rejects a value surfaces as CONFIG_ERROR."""
    with pytest.raises(FlextApiError, match="invalid 'memory' cache config: max_entries"):
        FlextApiCache("memory", {"max_entries": 0})


@pytest.mark.parametrize("ttl", [0, -1, math.nan, "300", True])
def test_bad_default_ttl_is_a_config_error(ttl: object) -> None:
    """default_ttl is checked like every other option: CONFIG_ERROR, not a bare ValueError."""
    with pytest.raises(FlextApiError, match="invalid 'memory' cache config: default_ttl") as info:
        FlextApiCache("memory", {"default_ttl": ttl})
    assert info.value.code is ErrorCode.CONFIG_ERROR


def test_redis_without_url_is_a_config_error() -> None:
    """The redis backend needs a url or a client."""
    with pytest.raises(FlextApiError, match="needs a url"):
        FlextApiCache("redis")


def test_backend_instance_takes_only_default_ttl() -> None:
    """With a backend instance, config may only hold default_ttl."""
    FlextApiCache(MemoryBackend(), {"default_ttl": 5})
    with pytest.raises(FlextApiError, match="needs a backend name"):
        FlextApiCache(MemoryBackend(), {"max_entries": 5})


async def test_register_backend_adds_a_named_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """register_backend makes a new name available with its config keys."""
    monkeypatch.setattr(_facade, "_BACKENDS", dict(_facade._BACKENDS))

    def factory(config: dict[str, object], clock: object) -> CacheBackend:
        return MemoryBackend(max_entries=int(str(config["size"])))

    register_backend("tiny", factory, ["size"])
    cache = FlextApiCache("tiny", {"size": 1})
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.get("a") is None
    assert isinstance(await cache.backend.usage(), BackendUsage)
    assert "FlextApiCache backend=<MemoryBackend" in repr(cache)


def test_memory_backend_satisfies_the_protocol(tmp_path: Path) -> None:
    """MemoryBackend and FilesystemBackend are CacheBackends."""
    assert isinstance(MemoryBackend(), CacheBackend)
    assert isinstance(FilesystemBackend(tmp_path), CacheBackend)


@pytest.mark.parametrize("backend", ["memory", "filesystem"])
async def test_non_str_keys_are_type_errors_on_every_backend(backend: str, tmp_path: Path) -> None:
    """An int key is a TypeError on every backend, and nothing is stored."""
    config = {"path": str(tmp_path)} if backend == "filesystem" else {}
    cache = FlextApiCache(backend, config)
    for call in (
        lambda: cache.set(1, "v"),  # type: ignore[arg-type]
        lambda: cache.get(1),  # type: ignore[arg-type]
        lambda: cache.delete(1),  # type: ignore[arg-type]
        lambda: cache.get_many([1]),  # type: ignore[list-item]
        lambda: cache.set_many({1: "v"}),  # type: ignore[dict-item]
    ):
        with pytest.raises(TypeError, match="cache keys must be str, got int"):
            await call()
    assert (await cache.stats()).entries == 0


async def test_get_many_refuses_a_single_string() -> None:
    """get_many("user:1") would look up "u", "s", "e"... one character at a time."""
    cache = FlextApiCache()
    await cache.set("u", 1)
    with pytest.raises(TypeError, match="iterable of str"):
        await cache.get_many("user")


async def test_nan_value_is_refused_and_nothing_stored() -> None:
    """A NaN value is a TypeError at set, never stored to come back as None."""
    cache = FlextApiCache()
    with pytest.raises(TypeError, match="NaN or infinite"):
        await cache.set_many({"a": 1.0, "b": float("nan")})
    assert await cache.get_many(["a", "b"]) == {}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"host": "h", "port": "abc"}, "'port' must be a non-negative integer"),
        ({"host": "h", "db": -1}, "'db' must be a non-negative integer"),
        ({"host": "h", "port": 63.79}, "'port' must be a non-negative integer"),
        ({"url": 6379}, "url must be a str"),
        ({"url": "redis://h", "socket_timeout": 0}, "socket_timeout must be > 0 seconds"),
        ({"url": "redis://h", "socket_timeout": -1}, "socket_timeout must be > 0 seconds"),
        ({"url": "redis://h", "socket_timeout": math.nan}, "socket_timeout must be > 0 seconds"),
        ({"url": "redis://h", "socket_timeout": math.inf}, "socket_timeout must be finite"),
        ({"url": "redis://h", "socket_timeout": "5"}, "socket_timeout must be seconds"),
    ],
)
def test_malformed_redis_config_is_a_config_error(config: dict[str, object], match: str) -> None:
    """Seed-style host/port/db, a non-str url, a socket_timeout that is not finite seconds
    > 0: CONFIG_ERROR when the cache is built, not an "outage" on every call later."""
    with pytest.raises(FlextApiError, match=match) as info:
        FlextApiCache("redis", config)
    assert info.value.code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize("bound", [float("nan"), 1.5, "100"])
def test_malformed_size_bounds_are_config_errors(bound: object, tmp_path: Path) -> None:
    """max_entries / max_bytes that are not ints are CONFIG_ERROR for every backend."""
    with pytest.raises(FlextApiError, match="max_entries must be an int") as info:
        FlextApiCache("memory", {"max_size": bound})
    assert info.value.code is ErrorCode.CONFIG_ERROR
    with pytest.raises(FlextApiError, match="max_bytes must be an int"):
        FlextApiCache("filesystem", {"path": str(tmp_path), "max_bytes": bound})
