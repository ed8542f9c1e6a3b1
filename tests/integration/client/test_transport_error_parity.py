"""Each upstream fault gives the same ErrorCode on the aiohttp and the pyreqwest transport.

One row per fault, run on both transports against the real fault server (or, for the
faults it cannot make, a raw socket server in the test): a caller's error handling
must not depend on the transport it runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from flext_api import ClientConfig, ErrorCode, FlextApiError, HttpRequest
from flext_api.client import FlextApiClient
from flext_api.transports import AiohttpTransport, PyreqwestTransport, Transport
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

Handler = Callable[[Request, ResponseWriter], Awaitable[None]]


@pytest.fixture(params=["aiohttp", "pyreqwest"])
def transport_name(request: pytest.FixtureRequest) -> str:
    """The transport a row runs on."""
    return str(request.param)


def _transport(name: str) -> Transport:
    return AiohttpTransport() if name == "aiohttp" else PyreqwestTransport()


@contextlib.contextmanager
def _route(fault: FaultServer, handler: Handler) -> Iterator[str]:
    path = f"/parity/{uuid.uuid4().hex[:12]}"
    route = fault.add_route(path, handler)
    try:
        yield path
    finally:
        fault.remove_route(route)


async def _code(transport_name: str, url: str, **options: object) -> ErrorCode | None:
    config = ClientConfig(transport=transport_name)  # type: ignore[arg-type]
    async with FlextApiClient(config=config, default_plugins=False) as client:
        result = await client.get(url, **options)  # type: ignore[arg-type]
        assert client.stats()["pool"]["in_use"] == 0
    return result.error_code


async def _many_headers(req: Request, w: ResponseWriter) -> None:
    await w.send_head(200, [(f"X-Many-{i}", "v") for i in range(300)] + [("Content-Length", "0")])
    w.finish()


async def _huge_header(req: Request, w: ResponseWriter) -> None:
    await w.send_head(200, [("X-Huge", "h" * 1_000_000), ("Content-Length", "0")])
    w.finish()


async def _garbage_status(req: Request, w: ResponseWriter) -> None:
    await w.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
    w.abort()


async def _bad_chunks(req: Request, w: ResponseWriter) -> None:
    await w.send_head(200, [("Transfer-Encoding", "chunked")])
    await w.write(b"zz\r\nnot a chunk\r\n")
    w.abort()


async def _bad_gzip(req: Request, w: ResponseWriter) -> None:
    body = b"this is not gzip at all" * 10
    await w.send(200, body, [("Content-Encoding", "gzip")])


async def _good_gzip(req: Request, w: ResponseWriter) -> None:
    await w.send(200, gzip.compress(b"hello " * 100), [("Content-Encoding", "gzip")])


@pytest.mark.parametrize(
    "handler",
    [_many_headers, _huge_header, _garbage_status, _bad_chunks, _bad_gzip],
    ids=["300-headers", "1MB-header", "garbage-status-line", "bad-chunked", "bad-gzip"],
)
async def test_malformed_answer_is_protocol_error(
    fault: FaultServer, transport_name: str, handler: Handler
) -> None:
    """An answer that does not parse, or whose body does not decode, is PROTOCOL_ERROR."""
    with _route(fault, handler) as path:
        code = await _code(transport_name, fault.url + path)
    assert code is ErrorCode.PROTOCOL_ERROR


async def _bad_chunk_after_head(req: Request, w: ResponseWriter) -> None:
    # The head is read and handed out before the bad chunk comes; the connection then
    # stays open, so only the parse error can end the call before the read timeout.
    await w.send_head(200, [("Transfer-Encoding", "chunked")])
    await asyncio.sleep(0.05)
    await w.write(b"zz\r\nnot a chunk\r\n")
    await asyncio.sleep(10)
    w.abort()


async def test_bad_chunk_after_the_head_fails_at_once(
    fault: FaultServer, transport_name: str
) -> None:
    """A chunk that does not parse, after the head was read, is PROTOCOL_ERROR at once.

    aiohttp's compiled parser puts this error on the connection but not on the body being
    read, so the read waited for the read timeout; the transport fails the body itself.
    """
    with _route(fault, _bad_chunk_after_head) as path:
        code = await _code(transport_name, fault.url + path, timeout=30)
        config = ClientConfig(transport=transport_name)  # type: ignore[arg-type]
        async with FlextApiClient(fault.url, config=config, default_plugins=False) as client:
            with pytest.raises(FlextApiError) as info:
                async with client.stream("GET", path, timeout=30) as response:
                    await response.aread()
            assert client.stats()["pool"]["in_use"] == 0
    assert code is ErrorCode.PROTOCOL_ERROR
    assert info.value.code is ErrorCode.PROTOCOL_ERROR


async def test_gzip_body_is_decompressed(fault: FaultServer, transport_name: str) -> None:
    """A gzip-encoded body arrives decoded."""
    config = ClientConfig(transport=transport_name)  # type: ignore[arg-type]
    with _route(fault, _good_gzip) as path:
        async with FlextApiClient(fault.url, config=config, default_plugins=False) as client:
            result = await client.get(path)
    assert result.value.content == b"hello " * 100


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://[::1/x", ErrorCode.INVALID_REQUEST),
        ("ftp://127.0.0.1:1/file", ErrorCode.INVALID_REQUEST),
        ("http://127.0.0.1:1/", ErrorCode.CONNECT_ERROR),
        ("http://no-such-host.invalid/", ErrorCode.DNS_ERROR),
    ],
    ids=["bad-ipv6", "ftp-scheme", "refused", "unknown-host"],
)
async def test_request_the_transport_cannot_send(
    transport_name: str, url: str, code: ErrorCode
) -> None:
    """A URL that is not HTTP, does not parse, refuses or does not resolve: one code each."""
    transport = _transport(transport_name)
    try:
        with pytest.raises(FlextApiError) as caught:
            await transport.send(HttpRequest("GET", url))
        assert caught.value.code is code
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


async def test_upload_reset_by_the_server_is_protocol_error(transport_name: str) -> None:
    """A server that resets the connection mid-upload gives PROTOCOL_ERROR."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield b"u" * 65536

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = ClientConfig(transport=transport_name)  # type: ignore[arg-type]
    try:
        async with FlextApiClient(config=config, default_plugins=False) as client:
            result = await client.post(f"http://127.0.0.1:{port}/upload", content=endless())
            assert client.stats()["pool"]["in_use"] == 0
        assert result.error_code is ErrorCode.PROTOCOL_ERROR
    finally:
        server.close()
        await server.wait_closed()
