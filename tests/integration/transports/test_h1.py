"""H1Transport against real servers on 127.0.0.1: pool, limits, streaming, every failure."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest, HttpResponse, PoolConfig, TimeoutConfig
from flext_api.transports import H1Transport, MockTransport
from flext_api.transports._h1 import RAW_HEADERS
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _poll(condition: Callable[[], bool], bound: float = 10.0) -> None:
    """Wait until ``condition()`` holds (generous bound: never a timing assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + bound
    while not condition():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _raw_server(handler: Handler) -> AsyncIterator[str]:
    """A one-off asyncio server speaking whatever bytes ``handler`` writes."""
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away first: nothing left to answer
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def _error(call: Awaitable[object]) -> FlextApiError:
    with pytest.raises(FlextApiError) as info:
        await call
    return info.value


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# ---------------------------------------------------------------------- exchanges
async def test_small_answer_arrives_whole(fault: FaultServer) -> None:
    """A small answer is returned read, with status, headers and version."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("GET", fault.url + "/echo?a=1"))
    assert (response.status_code, response.http_version) == (200, "HTTP/1.1")
    assert response.json()["query"] == {"a": ["1"]}
    assert response.headers["content-type"].startswith("application/json")
    await transport.aclose()


async def test_host_header_is_the_urls_authority(fault: FaultServer) -> None:
    """Without a Host header the URL's host:port is sent."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("GET", fault.url + "/echo"))
    assert response.json()["headers"]["host"] == fault.url.removeprefix("http://")
    await transport.aclose()


async def test_bytes_body_is_sent_with_its_length(fault: FaultServer) -> None:
    """A bytes body goes with Content-Length."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("POST", fault.url + "/echo", content=b"hello"))
    assert (response.json()["body"], response.json()["headers"]["content-length"]) == ("hello", "5")
    await transport.aclose()


async def test_post_without_body_says_length_zero(fault: FaultServer) -> None:
    """A POST with no body announces Content-Length: 0."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("POST", fault.url + "/echo"))
    assert response.json()["headers"]["content-length"] == "0"
    await transport.aclose()


async def test_stream_body_of_unknown_length_is_chunked(fault: FaultServer) -> None:
    """A body stream without Content-Length is sent chunked and arrives whole."""
    transport = H1Transport()
    request = HttpRequest("POST", fault.url + "/echo", stream=_chunks(b"ab", b"", b"cd"))
    response = await transport.send(request)
    body = response.json()
    assert (body["body"], body["headers"]["transfer-encoding"]) == ("abcd", "chunked")
    await transport.aclose()


async def test_stream_body_with_length_is_sent_as_is(fault: FaultServer) -> None:
    """A body stream with Content-Length goes unframed."""
    transport = H1Transport()
    request = HttpRequest(
        "PUT",
        fault.url + "/echo",
        headers={"Content-Length": "4"},
        stream=_chunks(b"ab", b"cd"),
    )
    body = (await transport.send(request)).json()
    assert (body["body"], "transfer-encoding" in body["headers"]) == ("abcd", False)
    await transport.aclose()


async def test_large_upload_streams_through(fault: FaultServer) -> None:
    """An 8 MiB body stream (drained as the socket takes it) arrives whole."""
    transport = H1Transport()
    parts = [bytes([i]) * 65536 for i in range(128)]
    request = HttpRequest("POST", fault.url + "/echo", stream=_chunks(*parts))
    response = await transport.send(request)
    assert response.json()["body_length"] == 128 * 65536
    await transport.aclose()


async def test_large_download_is_streamed_in_pieces(fault: FaultServer) -> None:
    """A 16 MiB chunked answer streams in many pieces, every byte there."""
    transport = H1Transport()
    url = fault.url + "/stream?chunks=256&size=65536"
    response = await transport.send(HttpRequest("GET", url), stream=True)
    sizes = [len(chunk) async for chunk in response.aiter_bytes()]
    assert (sum(sizes), len(sizes) > 1) == (256 * 65536, True)
    await transport.aclose()


async def test_unread_stream_pauses_reading_the_upstream(fault: FaultServer) -> None:
    """A stream nobody reads stops reading from the socket (bounded buffer)."""
    transport = H1Transport()
    url = fault.url + "/stream?chunks=256&size=65536"
    response = await transport.send(HttpRequest("GET", url), stream=True)
    (conn,) = next(iter(transport._origins.values())).conns
    await _poll(lambda: conn.paused_reading)
    assert conn.buffered < 4 * 1024 * 1024
    total = sum([len(chunk) async for chunk in response.aiter_bytes()])
    assert total == 256 * 65536
    await transport.aclose()


async def test_body_ended_by_close_is_read_to_the_end(fault: FaultServer) -> None:
    """An answer without length (SSE) ends cleanly when the upstream closes."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("GET", fault.url + "/sse?events=3"), stream=True)
    assert await response.aread() == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert transport.stats()["open"] == 0
    await transport.aclose()


async def test_head_answer_has_no_body(fault: FaultServer) -> None:
    """A HEAD answer's announced length is not waited for."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("HEAD", fault.url + "/bytes/100"))
    assert (response.headers["content-length"], response.content) == ("100", b"")
    await transport.aclose()


async def test_interim_answers_are_skipped() -> None:
    """A 100 Continue before the answer is passed over."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n")
        writer.write(b"Content-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()
        writer.close()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        response = await transport.send(HttpRequest("GET", url + "/"))
        assert (response.status_code, response.content) == (201, b"ok")
        await transport.aclose()


async def test_a_101_nobody_asked_for_ends_the_exchange_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 101 with bytes of another protocol after it: the answer is the 101 (as aiohttp
    gives it), the connection is not reused, and nothing is logged by asyncio (the
    parser's upgrade signal escaped ``data_received`` as a "Fatal error")."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await _read_head(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n")
        writer.write(b"Connection: upgrade\r\n\r\nbytes of another protocol")
        await writer.drain()
        await reader.read()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        with caplog.at_level("ERROR", logger="asyncio"):
            answer = await transport.send(HttpRequest("GET", url + "/"))
            assert (answer.status_code, answer.content) == (101, b"")
            again = await transport.send(HttpRequest("GET", url + "/"))
            assert again.status_code == 101
        assert len(connections) == 2
        assert not [r for r in caplog.records if r.name == "asyncio"]
        await transport.aclose()


@pytest.mark.parametrize(
    "first",
    [
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nrealHTTP/1.1 200 OK\r\n"
        b"Content-Length: 6\r\n\r\nforged",
    ],
    ids=["204-with-a-body", "body-past-its-length"],
)
async def test_bytes_after_an_answer_answer_nothing(first: bytes) -> None:
    """Bytes after the end of an answer (a 204 with a body, a body longer than its
    Content-Length) are neither taken for that answer nor left on the connection for
    the next request's: the answer stands, the connection is closed, the next request
    gets its own answer on a new one."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await _read_head(reader)
        writer.write(first)
        await writer.drain()
        await _read_head(reader)  # a second request on this connection would get "real"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
        await writer.drain()
        await reader.read()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        answer = await transport.send(HttpRequest("GET", url + "/"))
        expected = (204, b"") if first.startswith(b"HTTP/1.1 204") else (200, b"real")
        assert (answer.status_code, answer.content) == expected
        again = await transport.send(HttpRequest("GET", url + "/"))
        assert (again.status_code, again.content) == expected  # a new connection's first
        assert len(connections) == 2
        await transport.aclose()


async def test_early_answer_stops_the_upload() -> None:
    """An answer that comes before the body ends is returned; the connection is dropped."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1024)
            yield b"x" * 1024
            await asyncio.sleep(0.01)

    async with _raw_server(handler) as url:
        transport = H1Transport()
        response = await transport.send(HttpRequest("POST", url, stream=endless()))
        assert (response.status_code, transport.stats()["idle"]) == (413, 0)
        await transport.aclose()


# ------------------------------------------------------------------------- pool
async def test_connection_is_reused(fault: FaultServer) -> None:
    """Two exchanges in a row share one keep-alive connection."""
    transport = H1Transport()
    opened = fault.connections_opened
    for _ in range(2):
        assert (await transport.send(HttpRequest("GET", fault.url + "/echo"))).status_code == 200
    assert fault.connections_opened - opened == 1
    assert transport.stats()["idle"] == 1
    await transport.aclose()


async def test_connection_close_answer_is_not_reused(fault: FaultServer) -> None:
    """An answer with Connection: close leaves no idle connection."""
    transport = H1Transport()
    await transport.send(HttpRequest("GET", fault.url + "/close"))
    assert transport.stats()["idle"] == 0
    await transport.aclose()


async def test_idle_connection_expires(fault: FaultServer) -> None:
    """An idle connection is closed after keepalive_expiry."""
    transport = H1Transport(PoolConfig(keepalive_expiry=0.05))
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    await _poll(lambda: transport.stats()["open"] == 0)
    await _poll(lambda: fault.open_connections == 0)
    await transport.aclose()


async def test_expired_connection_is_not_taken(fault: FaultServer) -> None:
    """A connection idle past its expiry is closed when next asked for, not reused."""
    transport = H1Transport(PoolConfig(keepalive_expiry=0.05))
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    assert transport._sweep is not None
    transport._sweep.cancel()  # leave the expiry to the next take
    transport._sweep = None
    conn = next(iter(next(iter(transport._origins.values())).conns))
    conn.idle_since -= 1.0
    opened = fault.connections_opened
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    assert (fault.connections_opened - opened, conn.alive) == (1, False)
    await transport.aclose()


async def test_idle_connections_are_capped_by_max_keepalive(fault: FaultServer) -> None:
    """Past max_keepalive idle connections, a finished one is closed."""
    transport = H1Transport(PoolConfig(max_connections=4, max_keepalive=1))
    requests = [HttpRequest("GET", fault.url + "/delay/0.2") for _ in range(3)]
    await asyncio.gather(*(transport.send(r) for r in requests))
    assert (transport.stats()["idle"], transport.stats()["open"]) == (1, 1)
    await transport.aclose()


async def test_pool_full_fails_with_pool_timeout(fault: FaultServer) -> None:
    """With every slot held past the pool timeout, the next request fails POOL_TIMEOUT."""
    transport = H1Transport(
        PoolConfig(max_connections=1, max_keepalive=1), TimeoutConfig(pool=0.05)
    )
    held = await transport.send(
        HttpRequest("GET", fault.url + "/stream?chunks=3&interval=0.5"), stream=True
    )
    error = await _error(transport.send(HttpRequest("GET", fault.url + "/echo")))
    assert error.code is ErrorCode.POOL_TIMEOUT
    await held.aclose()
    await transport.aclose()


async def test_waiter_gets_the_freed_slot(fault: FaultServer) -> None:
    """A request waiting for a slot runs when a held one is given back."""
    transport = H1Transport(PoolConfig(max_connections=1, max_keepalive=1))
    held = await transport.send(
        HttpRequest("GET", fault.url + "/stream?chunks=3&interval=0.5"), stream=True
    )
    waiting = asyncio.ensure_future(transport.send(HttpRequest("GET", fault.url + "/echo")))
    await _poll(lambda: transport.stats()["waiting"] == 1)
    await held.aread()
    assert (await waiting).status_code == 200
    assert transport.stats()["open"] == 1
    await transport.aclose()


async def test_connection_limit_evicts_an_idle_connection(fault: FaultServer) -> None:
    """At max_connections open, a new origin's connection replaces an idle one."""
    transport = H1Transport(PoolConfig(max_connections=1, max_keepalive=1))
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    other = fault.url.replace("127.0.0.1", "localhost")
    await transport.send(HttpRequest("GET", other + "/echo"))
    assert transport.stats()["open"] == 1
    await transport.aclose()


async def test_partly_read_stream_closes_its_connection(fault: FaultServer) -> None:
    """A stream closed before its end is not put back in the pool."""
    transport = H1Transport()
    url = fault.url + "/stream?chunks=64&size=65536"
    response = await transport.send(HttpRequest("GET", url), stream=True)
    await response.aclose()
    assert transport.stats() | {"transport": "h1"} == {
        "transport": "h1",
        "max_connections": 100,
        "in_use": 0,
        "waiting": 0,
        "open": 0,
        "idle": 0,
    }
    await transport.aclose()


async def test_repr_shows_the_pool(fault: FaultServer) -> None:
    """The repr names requests and connections."""
    transport = H1Transport()
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    assert repr(transport) == (
        "<H1Transport [Requests: 0 active, 0 queued | Connections: 1 open, 1 idle, max 100]>"
    )
    await transport.aclose()


# ---------------------------------------------------------------------- failures
async def test_refused_port_is_connect_error() -> None:
    """A closed port fails with CONNECT_ERROR."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = H1Transport()
    error = await _error(transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/")))
    assert (error.code, transport.stats()["in_use"]) == (ErrorCode.CONNECT_ERROR, 0)
    await transport.aclose()


async def test_full_accept_queue_is_connect_timeout() -> None:
    """A listener whose accept queue is full never completes the handshake: CONNECT_TIMEOUT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        transport = H1Transport(timeout=TimeoutConfig(connect=0.2, read=5))
        error = await _error(transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/")))
        assert error.code is ErrorCode.CONNECT_TIMEOUT
        await transport.aclose()
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_silent_upstream_is_read_timeout(fault: FaultServer) -> None:
    """No head within the read timeout fails with READ_TIMEOUT."""
    transport = H1Transport(timeout=TimeoutConfig(read=0.1))
    error = await _error(transport.send(HttpRequest("GET", fault.url + "/delay/5")))
    assert (error.code, transport.stats()["open"]) == (ErrorCode.READ_TIMEOUT, 0)
    await transport.aclose()


async def test_deadline_is_deadline_exceeded(fault: FaultServer) -> None:
    """A request past its deadline fails with DEADLINE_EXCEEDED."""
    transport = H1Transport(timeout=TimeoutConfig(read=30))
    loop = asyncio.get_running_loop()
    from flext_api._clock import get_clock

    request = HttpRequest("GET", fault.url + "/delay/5", deadline=get_clock().monotonic() + 0.1)
    error = await _error(transport.send(request))
    assert error.code is ErrorCode.DEADLINE_EXCEEDED
    assert loop.is_running()
    await transport.aclose()


async def test_passed_deadline_sends_nothing(fault: FaultServer) -> None:
    """A deadline already passed fails before any byte is sent."""
    from flext_api._clock import get_clock

    transport = H1Transport()
    request = HttpRequest("GET", fault.url + "/echo", deadline=get_clock().monotonic() - 1)
    error = await _error(transport.send(request))
    assert (error.code, fault.hits("/echo")) == (ErrorCode.DEADLINE_EXCEEDED, 0)
    await transport.aclose()


async def test_slow_stream_is_read_timeout(fault: FaultServer) -> None:
    """A stream silent for longer than the read timeout fails with READ_TIMEOUT."""
    transport = H1Transport(timeout=TimeoutConfig(read=0.1))
    url = fault.url + "/slow-body?chunks=3&interval=2"
    response = await transport.send(HttpRequest("GET", url), stream=True)
    error = await _error(response.aread())
    assert error.code is ErrorCode.READ_TIMEOUT
    await transport.aclose()


async def test_drop_before_answer_is_protocol_error_sent_once(fault: FaultServer) -> None:
    """A connection closed before any answer is PROTOCOL_ERROR, and the POST went once."""
    transport = H1Transport()
    error = await _error(transport.send(HttpRequest("POST", fault.url + "/drop", content=b"x")))
    assert (error.code, fault.hits("/drop")) == (ErrorCode.PROTOCOL_ERROR, 1)
    await transport.aclose()


async def test_cut_mid_body_fails_the_stream(fault: FaultServer) -> None:
    """A body cut short raises PROTOCOL_ERROR from the stream after the bytes that came."""
    transport = H1Transport()
    response = await transport.send(HttpRequest("GET", fault.url + "/truncated"), stream=True)
    received = bytearray()

    async def read_all() -> None:
        async for chunk in response.aiter_bytes():
            received.extend(chunk)

    error = await _error(read_all())
    assert (error.code, bytes(received)) == (ErrorCode.PROTOCOL_ERROR, b"0123456789")
    assert transport.stats()["in_use"] == 0
    await transport.aclose()


async def test_cut_mid_body_fails_a_read_answer(fault: FaultServer) -> None:
    """A body cut short is never returned as complete: PROTOCOL_ERROR."""
    transport = H1Transport()
    error = await _error(transport.send(HttpRequest("GET", fault.url + "/drop-after-headers")))
    assert error.code is ErrorCode.PROTOCOL_ERROR
    await transport.aclose()


async def test_reset_mid_body_fails_the_stream() -> None:
    """A reset (RST) in the middle of a body raises PROTOCOL_ERROR from the stream."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        response = await transport.send(HttpRequest("GET", url + "/"), stream=True)
        error = await _error(response.aread())
        assert error.code is ErrorCode.PROTOCOL_ERROR
        await transport.aclose()


async def test_answer_that_is_not_http_is_protocol_error() -> None:
    """Bytes that are not an HTTP/1.1 answer fail with PROTOCOL_ERROR."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        error = await _error(transport.send(HttpRequest("GET", url + "/")))
        assert (error.code, transport.stats()["open"]) == (ErrorCode.PROTOCOL_ERROR, 0)
        await transport.aclose()


async def test_failing_body_source_keeps_its_error_as_cause(fault: FaultServer) -> None:
    """An error raised by the body stream is the failure's cause; the connection closes."""

    class Gone(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield b"start"
        raise Gone("client went away")

    transport = H1Transport()
    request = HttpRequest("POST", fault.url + "/echo", stream=failing())
    error = await _error(transport.send(request))
    assert isinstance(error.__cause__, Gone)
    assert transport.stats()["open"] == 0
    await transport.aclose()


async def test_caller_cancel_propagates(fault: FaultServer) -> None:
    """A cancellation from the caller is not turned into a timeout."""
    transport = H1Transport(timeout=TimeoutConfig(read=30))
    task = asyncio.ensure_future(transport.send(HttpRequest("GET", fault.url + "/delay/5")))
    await _poll(lambda: fault.hits("/delay/5") == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.stats()["in_use"] == 0
    await transport.aclose()


# ------------------------------------------------------------------------ inputs
async def test_header_with_newline_is_refused(fault: FaultServer) -> None:
    """A header value with CR or LF fails INVALID_REQUEST; nothing is sent."""
    transport = H1Transport()
    request = HttpRequest("GET", fault.url + "/echo", headers={"X-A": "1\r\nX-B: 2"})
    error = await _error(transport.send(request))
    assert (error.code, fault.hits("/echo")) == (ErrorCode.INVALID_REQUEST, 0)
    await transport.aclose()


async def test_url_with_credentials_is_refused() -> None:
    """A URL with user info fails INVALID_REQUEST."""
    transport = H1Transport()
    error = await _error(transport.send(HttpRequest("GET", "http://u:p@127.0.0.1:1/")))
    assert error.code is ErrorCode.INVALID_REQUEST
    await transport.aclose()


async def test_https_without_fallback_is_refused() -> None:
    """An https:// URL with no fallback transport fails INVALID_REQUEST."""
    transport = H1Transport()
    error = await _error(transport.send(HttpRequest("GET", "https://127.0.0.1:1/")))
    assert error.code is ErrorCode.INVALID_REQUEST
    await transport.aclose()


async def test_https_goes_to_the_fallback() -> None:
    """An https:// URL is sent by the fallback transport, which closes with this one."""
    seen: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        return HttpResponse(204)

    transport = H1Transport(fallback=MockTransport(handler))
    response = await transport.send(HttpRequest("GET", "https://example.test/x"))
    assert (response.status_code, seen) == (204, ["https://example.test/x"])
    await transport.aclose()


async def test_closed_transport_refuses(fault: FaultServer) -> None:
    """A closed transport fails INVALID_REQUEST."""
    transport = H1Transport()
    await transport.aclose()
    error = await _error(transport.send(HttpRequest("GET", fault.url + "/echo")))
    assert error.code is ErrorCode.INVALID_REQUEST


async def test_raw_header_pairs_are_sent_as_they_are(fault: FaultServer) -> None:
    """Byte pairs in extensions[RAW_HEADERS] replace request.headers; the answer's come back."""
    transport = H1Transport()
    request = HttpRequest(
        "GET", fault.url + "/echo", extensions={RAW_HEADERS: [(b"X-Raw", b"\xe9t\xe9")]}
    )
    response = await transport.send(request)
    assert response.json()["headers"]["x-raw"] == "\xe9t\xe9"
    raw = response.extensions[RAW_HEADERS]
    assert any(n.lower() == b"content-type" and v == b"application/json" for n, v in raw)
    await transport.aclose()


async def test_raw_header_pairs_reach_the_fallback_decoded() -> None:
    """A fallback transport gets RAW_HEADERS pairs as request.headers."""
    seen: list[str | None] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.headers.get("x-raw"))
        return HttpResponse(204)

    transport = H1Transport(fallback=MockTransport(handler))
    request = HttpRequest(
        "GET", "https://example.test/", extensions={RAW_HEADERS: [(b"x-raw", b"1")]}
    )
    await transport.send(request)
    assert seen == ["1"]
    await transport.aclose()


async def test_caller_framing_header_is_honoured(fault: FaultServer) -> None:
    """A stream sent with the caller's own Transfer-Encoding: chunked is chunk-encoded."""
    transport = H1Transport()
    request = HttpRequest(
        "POST",
        fault.url + "/echo",
        headers={"Transfer-Encoding": "chunked"},
        stream=_chunks(b"ab", b"cd"),
    )
    assert (await transport.send(request)).json()["body"] == "abcd"
    await transport.aclose()


async def test_bytes_on_an_idle_connection_close_it() -> None:
    """An idle connection that receives bytes nobody asked for is closed, not reused."""
    spoke = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await spoke.wait()
        writer.write(b"HTTP/1.1 200 OK\r\n")
        await writer.drain()
        await reader.read()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        await transport.send(HttpRequest("GET", url + "/"))
        assert transport.stats()["idle"] == 1
        spoke.set()
        await _poll(lambda: transport.stats()["open"] == 0)
        await transport.aclose()


async def test_broken_chunk_framing_mid_body_fails_the_stream() -> None:
    """Chunk framing that breaks after the head raises PROTOCOL_ERROR from the stream."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"zz-not-a-size\r\n")
        await writer.drain()
        await reader.read()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        response = await transport.send(HttpRequest("GET", url + "/"), stream=True)
        error = await _error(response.aread())
        assert error.code is ErrorCode.PROTOCOL_ERROR
        await transport.aclose()


async def test_upstream_that_stops_reading_the_upload_is_read_timeout() -> None:
    """An upload the upstream stops reading waits on the socket, then fails READ_TIMEOUT."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await asyncio.sleep(30)

    async def big() -> AsyncIterator[bytes]:
        for _ in range(4096):
            yield b"x" * 65536

    async with _raw_server(handler) as url:
        transport = H1Transport(timeout=TimeoutConfig(read=0.3))
        error = await _error(transport.send(HttpRequest("POST", url + "/", stream=big())))
        assert (error.code, transport.stats()["open"]) == (ErrorCode.READ_TIMEOUT, 0)
        await transport.aclose()


async def test_upstream_closing_during_a_stalled_upload_is_protocol_error() -> None:
    """An upstream that closes while the upload waits on the socket: PROTOCOL_ERROR."""
    close = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await close.wait()
        writer.transport.abort()

    async def big() -> AsyncIterator[bytes]:
        for _ in range(4096):
            yield b"x" * 65536

    async with _raw_server(handler) as url:
        transport = H1Transport(timeout=TimeoutConfig(read=30))
        sending = asyncio.ensure_future(transport.send(HttpRequest("POST", url, stream=big())))
        # "open" counts a connection from the moment it is dialled: wait until it is made.
        await _poll(lambda: any(o.conns for o in transport._origins.values()))
        conn = next(iter(next(iter(transport._origins.values())).conns))
        await _poll(lambda: conn.paused_writing)
        close.set()
        error = await _error(sending)
        assert error.code is ErrorCode.PROTOCOL_ERROR
        await transport.aclose()


async def test_deadline_shorter_than_the_pool_wait_is_deadline_exceeded(
    fault: FaultServer,
) -> None:
    """Waiting for a slot past the request's deadline fails DEADLINE_EXCEEDED."""
    from flext_api._clock import get_clock

    transport = H1Transport(PoolConfig(max_connections=1, max_keepalive=1), TimeoutConfig(pool=30))
    held = await transport.send(
        HttpRequest("GET", fault.url + "/stream?chunks=3&interval=0.5"), stream=True
    )
    request = HttpRequest("GET", fault.url + "/echo", deadline=get_clock().monotonic() + 0.05)
    error = await _error(transport.send(request))
    assert error.code is ErrorCode.DEADLINE_EXCEEDED
    await held.aclose()
    await transport.aclose()


async def test_cancelled_waiter_leaves_the_queue(fault: FaultServer) -> None:
    """A request cancelled while waiting for a slot leaves no waiter and no slot taken."""
    transport = H1Transport(PoolConfig(max_connections=1, max_keepalive=1))
    held = await transport.send(
        HttpRequest("GET", fault.url + "/stream?chunks=3&interval=0.5"), stream=True
    )
    waiting = asyncio.ensure_future(transport.send(HttpRequest("GET", fault.url + "/echo")))
    await _poll(lambda: transport.stats()["waiting"] == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await held.aclose()
    assert (await transport.send(HttpRequest("GET", fault.url + "/echo"))).status_code == 200
    assert transport.stats()["in_use"] == 0
    await transport.aclose()


async def test_waiter_with_a_deadline_gets_the_slot(fault: FaultServer) -> None:
    """A request with a deadline that waited for a slot is sent when one frees."""
    from flext_api._clock import get_clock

    transport = H1Transport(PoolConfig(max_connections=1, max_keepalive=1))
    held = await transport.send(
        HttpRequest("GET", fault.url + "/stream?chunks=3&interval=0.5"), stream=True
    )
    request = HttpRequest("GET", fault.url + "/echo", deadline=get_clock().monotonic() + 60)
    waiting = asyncio.ensure_future(transport.send(request))
    await _poll(lambda: transport.stats()["waiting"] == 1)
    await held.aclose()
    assert (await waiting).status_code == 200
    await transport.aclose()


async def test_every_expired_idle_connection_is_closed_on_take(fault: FaultServer) -> None:
    """Taking an expired connection closes the older idle ones too."""
    transport = H1Transport(PoolConfig(keepalive_expiry=60))
    requests = [HttpRequest("GET", fault.url + "/delay/0.1") for _ in range(2)]
    await asyncio.gather(*(transport.send(r) for r in requests))
    assert transport.stats()["idle"] == 2
    for conn in next(iter(transport._origins.values())).idle:
        conn.idle_since -= 120
    await transport.send(HttpRequest("GET", fault.url + "/echo"))
    assert (transport.stats()["open"], transport.stats()["idle"]) == (1, 1)
    await transport.aclose()


async def test_expiry_sweep_keeps_the_younger_connections(fault: FaultServer) -> None:
    """The sweep closes only expired connections and comes back for the rest."""
    transport = H1Transport(PoolConfig(keepalive_expiry=60))
    requests = [HttpRequest("GET", fault.url + "/delay/0.1") for _ in range(2)]
    await asyncio.gather(*(transport.send(r) for r in requests))
    oldest = next(iter(transport._origins.values())).idle[0]
    oldest.idle_since -= 120
    transport._expire()
    assert (transport.stats()["idle"], transport._sweep is not None) == (1, True)
    await transport.aclose()


def test_authority_without_port_is_port_80() -> None:
    """``http://host/`` means port 80."""
    transport = H1Transport()
    origin = transport._origin("example.test", HttpRequest("GET", "http://example.test/"))
    assert (origin.host, origin.port) == ("example.test", 80)


async def test_oversized_response_head_is_protocol_error() -> None:
    """An upstream head over MAX_RESPONSE_HEAD is refused with PROTOCOL_ERROR."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(2000):
            writer.write(b"X-Filler-%d: %s\r\n" % (i, b"v" * 60))
        writer.write(b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with _raw_server(handler) as url:
        transport = H1Transport()
        error = await _error(transport.send(HttpRequest("GET", url + "/")))
        assert (error.code, transport.stats()["open"]) == (ErrorCode.PROTOCOL_ERROR, 0)
        await transport.aclose()
