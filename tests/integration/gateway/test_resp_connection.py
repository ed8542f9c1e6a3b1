"""The limiter's lean Redis connection against a real redis-server (and a silent socket)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from flext_api.gateway._ratelimit import _SLIDING, CompiledLimit, EdgeLimiter
from flext_api.gateway._resp import RedisReplyError, RespConnection, lean_url_options
from flext_api.server._ratelimit import RateLimitDecision
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

COUNTER = "return redis.call('incr', KEYS[1]) * tonumber(ARGV[1])"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One redis-server for this module."""
    with RedisServer() as running:
        yield running


@pytest.fixture
async def counter(server: RedisServer) -> AsyncIterator[RespConnection]:
    """A connection whose script increments KEYS[1] and multiplies it by ARGV[1]."""
    options = lean_url_options(server.url)
    assert options is not None
    connection = RespConnection(options, COUNTER)
    try:
        yield connection
    finally:
        await connection.aclose()


async def test_runs_the_script(counter: RespConnection) -> None:
    """A call returns the script's reply."""
    assert await counter.evalsha([b"k:run"], [b"10"]) == 10
    assert await counter.evalsha([b"k:run"], [b"10"]) == 20


async def test_concurrent_calls_share_one_write_and_stay_atomic(counter: RespConnection) -> None:
    """Calls made in one loop turn go out in one write; each script sees its own count."""
    await counter.evalsha([b"k:warm"], [b"1"])  # connected
    protocol = counter._protocol
    assert protocol is not None
    sent = protocol.sent
    replies = await asyncio.gather(*(counter.evalsha([b"k:many"], [b"1"]) for _ in range(50)))
    assert sorted(replies) == list(range(1, 51))
    assert protocol.sent == sent + 50 and counter._protocol is protocol


async def test_a_flushed_script_cache_falls_back_to_eval(
    counter: RespConnection, server: RedisServer
) -> None:
    """After SCRIPT FLUSH the NOSCRIPT reply is answered by sending the script itself."""
    await counter.evalsha([b"k:flush"], [b"1"])
    redis.Redis.from_url(server.url).script_flush()
    assert await counter.evalsha([b"k:flush"], [b"1"]) == 2


async def test_a_script_error_is_raised(server: RedisServer) -> None:
    """An error reply of the script raises RedisReplyError; the connection stays usable."""
    options = lean_url_options(server.url)
    assert options is not None
    connection = RespConnection(options, "return redis.call('incr', KEYS[1])")
    try:
        redis.Redis.from_url(server.url).set("k:text", "not a number")
        with pytest.raises(RedisReplyError, match="not an integer"):
            await connection.evalsha([b"k:text"], [])
        assert await connection.evalsha([b"k:fine"], []) == 1
    finally:
        await connection.aclose()


async def test_select_and_auth_come_from_the_url(server: RedisServer) -> None:
    """The database number and the password in the URL are used on connect."""
    admin = redis.Redis.from_url(server.url)
    admin.config_set("requirepass", "s3cret")
    try:
        url = f"redis://:s3cret@{server.host}:{server.port}/3"
        options = lean_url_options(url)
        assert options is not None
        connection = RespConnection(options, COUNTER)
        assert await connection.evalsha([b"k:db3"], [b"1"]) == 1
        await connection.aclose()
        authed = redis.Redis.from_url(url)
        assert authed.get("k:db3") == b"1"
        wrong = lean_url_options(f"redis://:wrong@{server.host}:{server.port}/0")
        assert wrong is not None
        refused = RespConnection(wrong, COUNTER)
        with pytest.raises(ConnectionError, match="set-up"):
            await refused.evalsha([b"k:x"], [b"1"])
        assert "closed" in repr(refused)
    finally:
        redis.Redis.from_url(f"redis://:s3cret@{server.host}:{server.port}/0").config_set(
            "requirepass", ""
        )


def test_urls_with_other_options_are_left_to_redis_py() -> None:
    """TLS, unix sockets and plain URLs are lean; socket options are not."""
    assert lean_url_options("redis://127.0.0.1:6379/0") == {
        "host": "127.0.0.1", "port": 6379, "db": 0, "tls": False,
    }  # fmt: skip
    assert lean_url_options("rediss://127.0.0.1:6380")["tls"] is True  # type: ignore[index]
    assert lean_url_options("unix:///run/redis.sock")["path"] == "/run/redis.sock"  # type: ignore[index]
    assert lean_url_options("redis://127.0.0.1:6379/0?socket_keepalive=true") is None


async def test_redis_going_away_fails_waiting_calls_then_reconnects() -> None:
    """A stopped Redis fails the call with ConnectionError; once back, calls work again."""
    with RedisServer() as own:
        options = lean_url_options(own.url)
        assert options is not None
        connection = RespConnection(options, COUNTER)
        try:
            assert await connection.evalsha([b"k:gone"], [b"1"]) == 1
            own.pause()
            with pytest.raises(OSError):
                await connection.evalsha([b"k:gone"], [b"1"])
            own.restart()
            assert await connection.evalsha([b"k:gone"], [b"1"]) == 1  # an empty server
        finally:
            await connection.aclose()


async def test_a_silent_server_times_out_on_connect() -> None:
    """A server that accepts but never answers the set-up costs connect_timeout, then fails."""
    async with SilentServer() as port:
        options = {"host": "127.0.0.1", "port": port, "tls": False}
        connection = RespConnection(options, COUNTER, connect_timeout=0.2)
        with pytest.raises(TimeoutError):
            await connection.evalsha([b"k"], [b"1"])
        await connection.aclose()


async def test_a_reply_later_than_reply_timeout_fails_the_call() -> None:
    """A server that stops answering after the set-up fails the waiting call in time."""
    async with SilentServer(answers=3) as port:
        options = {"host": "127.0.0.1", "port": port, "tls": False, "db": 1, "password": "p"}
        connection = RespConnection(options, COUNTER, reply_timeout=0.2)
        with pytest.raises(ConnectionError, match="in time"):
            await connection.evalsha([b"k"], [b"1"])
        assert connection._protocol is None


async def test_an_unreadable_reply_drops_the_connection() -> None:
    """A reply that is not RESP fails the call and the connection."""
    async with SilentServer(answers=1, then=b"?what\r\n") as port:
        options = {"host": "127.0.0.1", "port": port, "tls": False}
        connection = RespConnection(options, COUNTER)
        with pytest.raises(ConnectionError, match="unreadable"):
            await connection.evalsha([b"k"], [b"1"])


class SilentServer:
    """A TCP server answering the first ``answers`` commands with +OK, the next with ``then``."""

    def __init__(self, answers: int = 0, then: bytes = b"") -> None:
        self.answers = answers
        self.then = then
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        seen = 0
        while line := await reader.readline():
            if line.startswith(b"*"):  # a command; its arguments follow
                seen += 1
                writer.write(b"+OK\r\n" if seen <= self.answers else self.then)

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


async def test_limiter_uses_redis_py_for_urls_it_cannot_serve(server: RedisServer) -> None:
    """A URL with socket options still limits through Redis (redis-py's client)."""
    from flext_api.gateway._edge_config import RateLimitRule

    limiter = EdgeLimiter(server.url + "?socket_keepalive=true")
    rule = RateLimitRule(limit="2/minute", key="ip", store="redis")
    limit = CompiledLimit.build("fallback", 0, rule)
    try:
        decisions: list[Any] = [await limiter.hit(limit, "ip:1") for _ in range(3)]
    finally:
        await limiter.aclose()
    assert all(isinstance(d, RateLimitDecision) for d in decisions)
    assert [d.allowed for d in decisions] == [True, True, False]


def test_the_sliding_script_is_what_the_limiter_loads() -> None:
    """The lean connection is built on the limiter's own script (one hash for both)."""
    connection = RespConnection({"host": "x", "port": 1, "tls": False}, _SLIDING)
    assert connection.script == _SLIDING.encode()
    assert len(connection.sha) == 40


async def test_a_unix_socket_url_is_served(tmp_path: Any) -> None:
    """``unix://`` connects over the socket at the URL's path."""
    path = str(tmp_path / "redis.sock")
    writers: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while line := await reader.readline():
            if line.startswith(b"*"):
                writer.write(b":7\r\n")

    server = await asyncio.start_unix_server(answer, path)
    options = lean_url_options(f"unix://{path}")
    assert options is not None
    connection = RespConnection(options, COUNTER)
    try:
        assert await connection.evalsha([b"k"], [b"1"]) == 7
    finally:
        await connection.aclose()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_a_cancelled_call_does_not_shift_the_replies(counter: RespConnection) -> None:
    """A caller cancelled while waiting leaves the next caller its own reply."""
    await counter.evalsha([b"k:cancel"], [b"1"])
    waiting = asyncio.create_task(counter.evalsha([b"k:cancel"], [b"1"]))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await counter.evalsha([b"k:cancel"], [b"100"]) == 300


async def test_closing_drops_the_connection_for_later_calls(counter: RespConnection) -> None:
    """After aclose() a call opens a new connection."""
    await counter.evalsha([b"k:reopen"], [b"1"])
    first = counter._protocol
    await counter.aclose()
    assert counter._protocol is None and "closed" in repr(counter)
    assert await counter.evalsha([b"k:reopen"], [b"1"]) == 2
    assert counter._protocol is not first
