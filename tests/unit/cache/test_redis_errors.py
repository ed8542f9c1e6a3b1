"""RedisBackend error translation, with a stub client (no server needed)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis import exceptions
from redis.asyncio import Redis

from flext_api import ErrorCode, FlextApiError
from flext_api.cache import RedisBackend


class Raising:
    """A stand-in for redis.asyncio.Redis whose every command raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def set(self, *args: Any, **kwargs: Any) -> None:
        raise self.error

    async def delete(self, *args: Any) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (exceptions.TimeoutError("slow"), ErrorCode.READ_TIMEOUT),
        (exceptions.ConnectionError("refused"), ErrorCode.CONNECT_ERROR),
        (exceptions.ResponseError("WRONGTYPE"), ErrorCode.UNEXPECTED_ERROR),
    ],
)
async def test_redis_errors_are_translated(error: Exception, code: ErrorCode) -> None:
    """Timeouts, connection errors and other Redis errors map to FlextApiError codes."""
    backend = RedisBackend(client=cast("Redis", Raising(error)))
    with pytest.raises(FlextApiError) as info:
        await backend.set("k", b"v", 1.0)
    assert info.value.code is code
    assert info.value.__cause__ is error


async def test_owned_client_is_closed_on_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend built from a URL closes its client; nothing is sent before first use."""
    backend = RedisBackend("redis://127.0.0.1:1/0")  # nothing listens: a send would fail
    client = backend._client
    closed: list[Redis] = []
    aclose = client.aclose

    async def recorded_aclose(close_connection_pool: bool | None = None) -> None:
        closed.append(client)
        await aclose(close_connection_pool)

    monkeypatch.setattr(client, "aclose", recorded_aclose)
    await backend.close()
    assert closed == [client]


async def test_given_client_is_left_open_on_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend handed a client leaves closing it to its owner."""
    client = Redis.from_url("redis://127.0.0.1:1/0")
    closed: list[Redis] = []

    async def recorded_aclose(close_connection_pool: bool | None = None) -> None:
        closed.append(client)

    monkeypatch.setattr(client, "aclose", recorded_aclose)
    await RedisBackend(client=client).close()
    assert closed == []


class Replies:
    """A stand-in for redis.asyncio.Redis whose pipelines answer GET and PTTL as given."""

    def __init__(self, data: bytes | None, pttl: int) -> None:
        self.replies = [data, pttl]

    def pipeline(self, transaction: bool = True) -> Replies:
        return self

    def get(self, key: bytes) -> None:
        """Queued."""

    def pttl(self, key: bytes) -> None:
        """Queued."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return self.replies


@pytest.mark.parametrize(
    ("pttl", "expected"),
    [(-2, None), (-1, (b"v", None)), (1500, (b"v", 1.5))],
)
async def test_a_value_whose_key_expired_before_its_pttl_is_a_miss(
    pttl: int, expected: tuple[bytes, float | None] | None
) -> None:
    """GET found the value, PTTL then says the key is gone (-2): a miss, not "no expiry"."""
    backend = RedisBackend(client=cast("Redis", Replies(b"v", pttl)))
    assert await backend.get("k") == expected
