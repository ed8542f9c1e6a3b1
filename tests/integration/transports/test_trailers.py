"""Trailer fields after a chunked body are not response headers (RFC 9110 §6.5.1: a
recipient must not merge them into the header section without knowing they are safe).

When the upstream's whole answer arrived in one read, the h1 transport's parser had
already appended the trailer fields to the header list before the caller read it: a
``Set-Cookie`` or ``Location`` sent as a trailer became a header of the response (through
the gateway, of the client's response too), and a trailer ``Content-Length`` cut the
body. Checked on every transport over a raw socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiClient
from tests.integration.transports._transports import TRANSPORTS

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
    b"Trailer: Set-Cookie, Location\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n"
)
TRAILERS = b"Set-Cookie: admin=1\r\nLocation: http://evil.example/\r\nX-Trailer-Only: yes\r\n"


async def _serve(answer: bytes) -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering every request head with ``answer``, in one write
    (so a client reads the body and its trailers in one go)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = b""
        while data := await reader.read(65536):
            seen += data
            while b"\r\n\r\n" in seen:
                _, _, seen = seen.partition(b"\r\n\r\n")
                writer.write(answer)
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    listener.close()
    await listener.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Trailers that would redirect and set a cookie, were they headers."""
    async for url in _serve(HEAD + TRAILERS + b"\r\n"):
        yield url


@pytest.fixture
async def framing_server() -> AsyncIterator[str]:
    """A ``Content-Length`` among the trailers (framing fields are not allowed there)."""
    async for url in _serve(HEAD + TRAILERS + b"Content-Length: 1\r\n\r\n"):
        yield url


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_trailer_fields_are_not_response_headers(name: str, server: str) -> None:
    """The body arrives whole and no trailer field shows up among the headers."""
    async with FlextApiClient(server, transport=TRANSPORTS[name](), timeout=5) as client:
        for _ in range(2):  # a fresh connection, then the same one reused
            result = await client.get("/", retry=0)
            assert result.is_success, result.error
            response = result.value
            assert response.status_code == 200
            assert response.content == b"hello world"
            assert "set-cookie" not in response.headers
            assert "location" not in response.headers
            assert "x-trailer-only" not in response.headers


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_framing_trailer_never_cuts_the_body(name: str, framing_server: str) -> None:
    """A trailer ``Content-Length`` is refused as a protocol error (aiohttp's parser does)
    or ignored; the h1 transport took it as the length and cut the body to one byte."""
    transport = TRANSPORTS[name]()
    async with FlextApiClient(framing_server, transport=transport, timeout=5) as client:
        result = await client.get("/", retry=0)
    if result.is_failure:
        assert result.error_code is ErrorCode.PROTOCOL_ERROR, result.error
        return
    assert result.value.content == b"hello world"
    assert result.value.headers.get("content-length") is None
    assert "set-cookie" not in result.value.headers
