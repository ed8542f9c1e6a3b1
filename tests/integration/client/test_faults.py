"""Each upstream misbehaviour yields a failure with the most specific code; nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest

from flext_api import (
    ClientConfig,
    ErrorCode,
    FlextApiError,
    HttpRequest,
    PoolConfig,
    TimeoutConfig,
)
from flext_api.client import FlextApiClient
from flext_api.transports import AiohttpTransport
from tests._poll import eventually
from tests.servers.fault import FaultServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aiohttp_path")]


def _client(server: FaultServer, **kwargs: object) -> FlextApiClient:
    return FlextApiClient(server.url, default_plugins=False, **kwargs)  # type: ignore[arg-type]


async def _assert_no_leaks(client: FlextApiClient) -> None:
    pool = client.stats()["pool"]
    assert (pool["in_use"], pool["waiting"]) == (0, 0)
    await client.aclose()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


async def test_refused_port_is_connect_error() -> None:
    """A closed port fails with CONNECT_ERROR."""
    client = FlextApiClient("http://127.0.0.1:1", default_plugins=False)
    result = await client.get("/")
    assert result.error_code is ErrorCode.CONNECT_ERROR
    await _assert_no_leaks(client)


async def test_unknown_host_is_dns_error() -> None:
    """A name under .invalid (RFC 6761) fails with DNS_ERROR."""
    client = FlextApiClient("http://no-such-host.invalid", default_plugins=False)
    result = await client.get("/")
    assert result.error_code is ErrorCode.DNS_ERROR
    await _assert_no_leaks(client)


async def test_connect_phase_past_its_timeout_is_connect_timeout() -> None:
    """A listener whose accept queue is full never completes the handshake: CONNECT_TIMEOUT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue; later SYNs are dropped, not refused
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        client = FlextApiClient(
            f"http://127.0.0.1:{port}",
            default_plugins=False,
            timeout=TimeoutConfig(connect=0.2, read=5, total=5),
        )
        result = await client.get("/")
        assert result.error_code is ErrorCode.CONNECT_TIMEOUT
        await _assert_no_leaks(client)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_scheme_other_than_http_is_refused_by_the_transport() -> None:
    """A request built by hand with another scheme is INVALID_REQUEST from the transport."""
    transport = AiohttpTransport()
    try:
        with pytest.raises(FlextApiError) as caught:
            await transport.send(HttpRequest("GET", "ftp://127.0.0.1:1/file"))
        assert caught.value.code is ErrorCode.INVALID_REQUEST
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


@pytest.mark.parametrize("path", ["/drop", "/drop?rst=1", "/drop-after-headers"])
async def test_dropped_connection_is_protocol_error(fault: FaultServer, path: str) -> None:
    """A connection closed (or reset) without a complete response is PROTOCOL_ERROR."""
    client = _client(fault)
    result = await client.get(path)
    assert result.error_code is ErrorCode.PROTOCOL_ERROR
    assert result.exception is not None and result.exception.request is not None
    await _assert_no_leaks(client)


async def test_truncated_body_is_protocol_error(fault: FaultServer) -> None:
    """A body shorter than its Content-Length is PROTOCOL_ERROR, not a short success."""
    client = _client(fault)
    result = await client.get("/truncated")
    assert result.error_code is ErrorCode.PROTOCOL_ERROR
    await _assert_no_leaks(client)


async def test_slow_body_past_read_timeout_is_read_timeout(fault: FaultServer) -> None:
    """A body trickled slower than the read timeout fails with READ_TIMEOUT."""
    client = _client(fault, timeout=TimeoutConfig(read=0.2))
    result = await client.get("/slow-body", params={"chunks": 5, "interval": 1})
    assert result.error_code is ErrorCode.READ_TIMEOUT
    await _assert_no_leaks(client)


async def test_slow_headers_past_read_timeout_is_read_timeout(fault: FaultServer) -> None:
    """Headers slower than the read timeout fail with READ_TIMEOUT."""
    client = _client(fault, timeout=TimeoutConfig(read=0.2))
    result = await client.get("/delay/2")
    assert result.error_code is ErrorCode.READ_TIMEOUT
    await _assert_no_leaks(client)


async def test_deadline_shorter_than_read_timeout_is_deadline_exceeded(fault: FaultServer) -> None:
    """When the total deadline runs out first, the code says DEADLINE_EXCEEDED."""
    client = _client(fault, timeout=TimeoutConfig(read=5, total=0.3))
    result = await client.get("/delay/2")
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    await _assert_no_leaks(client)


async def test_pool_exhausted_is_pool_timeout(fault: FaultServer) -> None:
    """With every connection busy, a request waiting past the pool timeout fails POOL_TIMEOUT."""
    config = ClientConfig(pool=PoolConfig(max_connections=2, max_keepalive=2))
    client = _client(fault, config=config, timeout=TimeoutConfig(pool=0.2, read=5))
    busy = [asyncio.create_task(client.get("/delay/1")) for _ in range(2)]
    assert await eventually(lambda: client.stats()["pool"]["in_use"] == 2)
    waiting = await client.get("/status/200")
    assert waiting.error_code is ErrorCode.POOL_TIMEOUT
    assert all(r.is_success for r in await asyncio.gather(*busy))
    await _assert_no_leaks(client)


async def test_503_is_http_status_failure_with_response(fault: FaultServer) -> None:
    """A 503 is a failure with HTTP_STATUS, and the response is reachable from the error."""
    async with _client(fault) as client:
        result = await client.get("/status/503")
    assert result.error_code is ErrorCode.HTTP_STATUS
    err = result.exception
    assert err is not None and err.response is not None
    assert err.response.status_code == 503
    assert err.response.json() == {"status": 503}


async def test_fail_on_http_error_false_returns_success(fault: FaultServer) -> None:
    """With fail_on_http_error=False, per request or per client, a 503 is a success."""
    async with _client(fault) as client:
        per_request = await client.get("/status/503", fail_on_http_error=False)
    async with _client(fault, fail_on_http_error=False) as client:
        per_client = await client.get("/status/503")
    assert per_request.value.status_code == 503
    assert per_client.value.status_code == 503


async def test_keep_alive_reuses_one_connection(fault: FaultServer) -> None:
    """Sequential requests share one pooled connection."""
    async with _client(fault) as client:
        for _ in range(5):
            assert (await client.get("/status/200")).is_success
        assert client.stats()["pool"]["idle"] == 1
    assert fault.connections_opened == 1


async def test_server_closing_after_each_answer_costs_a_connection_each(
    fault: FaultServer,
) -> None:
    """``Connection: close`` answers succeed; their connections are not pooled."""
    async with _client(fault, headers={"Connection": "close"}) as client:
        results = [await client.get("/status/200") for _ in range(3)]
        assert client.stats()["pool"]["idle"] == 0
    assert [r.value.status_code for r in results] == [200, 200, 200]
    assert fault.connections_opened == 3


async def test_head_reads_no_body_and_keeps_the_connection(fault: FaultServer) -> None:
    """A HEAD answer announces a body length but has none; the next call reuses the line."""
    async with _client(fault) as client:
        head = await client.head("/status/200")
        after = await client.get("/status/200")
    assert head.value.status_code == 200
    assert int(head.value.headers["content-length"]) > 0
    assert head.value.content == b""
    assert after.value.status_code == 200
    assert after.value.content != b""
    assert fault.connections_opened == 1


async def test_streamed_request_body_is_sent_chunked(fault: FaultServer) -> None:
    """An async iterable body arrives whole."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"alpha-", b"beta-", b"gamma"):
            yield part

    async with _client(fault) as client:
        result = await client.post("/echo", content=chunks())
    assert result.value.json()["body"] == "alpha-beta-gamma"


async def test_requests_after_close_fail_cleanly(fault: FaultServer) -> None:
    """A closed client answers INVALID_REQUEST instead of raising."""
    client = _client(fault)
    await client.aclose()
    result = await client.get("/status/200")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert client.is_closed


async def test_cancelled_pool_waiter_gives_its_place_back(fault: FaultServer) -> None:
    """Cancelling a request queued for a pool slot leaves the pool accounting intact."""
    config = ClientConfig(pool=PoolConfig(max_connections=1, max_keepalive=1))
    client = _client(fault, config=config)
    busy = asyncio.create_task(client.get("/delay/1"))
    assert await eventually(lambda: client.stats()["pool"]["in_use"] == 1)
    queued = asyncio.create_task(client.get("/status/200"))
    assert await eventually(lambda: client.stats()["pool"]["waiting"] == 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert (await busy).is_success
    assert (await client.get("/status/200")).is_success
    await _assert_no_leaks(client)


async def test_queued_requests_get_slots_in_order(fault: FaultServer) -> None:
    """With one slot, queued requests all complete, handed the slot one by one."""
    config = ClientConfig(pool=PoolConfig(max_connections=1, max_keepalive=1))
    client = _client(fault, config=config)
    results = await asyncio.gather(*(client.get(f"/echo?i={i}") for i in range(5)))
    assert [r.value.json()["query"]["i"] for r in results] == [[str(i)] for i in range(5)]
    await _assert_no_leaks(client)


async def test_stream_read_timeout_between_chunks(fault: FaultServer) -> None:
    """A streamed body that stalls longer than the read timeout raises READ_TIMEOUT."""
    from flext_api import FlextApiError

    client = _client(fault, timeout=TimeoutConfig(read=0.2))
    with pytest.raises(FlextApiError) as info:
        async with client.stream("GET", "/slow-body", params={"chunks": 5, "interval": 1}) as resp:
            await resp.aread()
    assert info.value.code is ErrorCode.READ_TIMEOUT
    await _assert_no_leaks(client)


class _OwnClock:
    """Real time, but not the system clock object: the transport reads the loop's time."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_deadline_holds_on_a_clock_other_than_the_loops(fault: FaultServer) -> None:
    """With a clock of its own, the client's deadline is translated to the loop's clock."""
    client = _client(fault, timeout=TimeoutConfig(read=5, total=0.3), clock=_OwnClock())
    result = await client.get("/delay/2")
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    await _assert_no_leaks(client)


async def test_closing_the_client_mid_request_is_cancelled_not_the_servers_fault(
    fault: FaultServer,
) -> None:
    """aclose() while a request waits for its answer: the request ends CANCELLED, caused
    by what the transport saw (it was reported as the server closing the connection,
    and retried as such by the default pipeline)."""
    client = FlextApiClient(fault.url, timeout=10)
    pending = asyncio.create_task(client.get("/delay/5"))
    assert await eventually(lambda: bool(fault.requests))  # it reached the server
    await client.aclose()
    result = await pending
    assert result.error_code is ErrorCode.CANCELLED
    assert "the client was closed while GET" in (result.error or "")
    assert isinstance(result.exception and result.exception.__cause__, FlextApiError)
    assert len(fault.requests) == 1  # not retried
