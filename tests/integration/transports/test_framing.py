"""A caller's framing headers (Content-Length, Transfer-Encoding) cannot make a body
that contradicts them reach a real server: the extra bytes would be read there as the
next request (request smuggling). Checked on every transport over a raw socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiClient, FlextApiError
from flext_api._errors import InvalidRequestError
from flext_api.transports import AiohttpTransport, H1Transport, HttpxTransport, Transport

TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "h1": H1Transport,
    "httpx": HttpxTransport,
}
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, bytearray]]:
    """A server on 127.0.0.1 that keeps every byte it is sent and answers each request
    head with an empty 200."""
    received = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            heads = (bytes(received) + data).count(b"\r\n\r\n") - received.count(b"\r\n\r\n")
            received.extend(data)
            for _ in range(heads):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}", received
    listener.close()
    await listener.wait_closed()


async def _send(name: str, base: str, **options: Any) -> Any:
    async with FlextApiClient(base, transport=TRANSPORTS[name](), timeout=5) as client:
        return await client.post("/upload", retry=0, **options)


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Content-Length": "0"}, "Content-Length says 0 bytes but the body has 38"),
        ({"Content-Length": "3, 38"}, "one number"),
        ({"Content-Length": "+38"}, "one number"),
        ({"Transfer-Encoding": "chunked"}, "only 'chunked' with a streamed body"),
    ],
)
async def test_framing_that_contradicts_a_bytes_body_is_refused(
    server: tuple[str, bytearray], name: str, headers: dict[str, str], fragment: str
) -> None:
    """Refused before anything is sent."""
    base, received = server
    result = await _send(name, base, headers=headers, content=b"abc" + SMUGGLED[:35])
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert fragment in (result.error or "")
    assert received == b""


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_stream_longer_than_its_content_length_stops_at_it(
    server: tuple[str, bytearray], name: str
) -> None:
    """A declared Content-Length holds a stream to that many bytes: the stream's excess
    is never written, and the call fails saying why."""
    base, received = server

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        yield SMUGGLED

    result = await _send(name, base, headers={"Content-Length": "3"}, content=body())
    assert result.is_failure
    error = result.exception
    assert isinstance(error, FlextApiError)
    cause = error if isinstance(error, InvalidRequestError) else error.__cause__
    assert isinstance(cause, InvalidRequestError), repr(error)
    assert "longer than its Content-Length 3" in str(cause)
    await asyncio.sleep(0.05)  # whatever was sent has arrived
    assert b"/smuggled" not in received


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_stream_with_its_exact_content_length_is_sent_as_declared(
    server: tuple[str, bytearray], name: str
) -> None:
    """A stream whose size is declared goes out with that Content-Length, not chunked."""
    base, received = server

    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    result = await _send(name, base, headers={"Content-Length": "11"}, content=body())
    assert result.is_success, result.error
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    assert b"content-length: 11" in head.lower() and b"transfer-encoding" not in head.lower()
    assert rest == b"hello world"
