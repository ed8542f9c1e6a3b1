"""A status line outside 100-599 is not HTTP: every transport answers PROTOCOL_ERROR."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest
from flext_api.transports import AiohttpTransport
from tests.integration.transports._transports import TRANSPORTS


@pytest.fixture
async def odd_status() -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering ``/<status>`` with that raw status line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = (await reader.readline()).split()[1].strip(b"/")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(
            b"HTTP/1.1 " + status + b" Odd\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_status_above_599_is_a_protocol_error(
    odd_status: str, name: str, stream: bool
) -> None:
    """``HTTP/1.1 999`` is refused with PROTOCOL_ERROR naming the status."""
    transport = TRANSPORTS[name]()
    try:
        with pytest.raises(FlextApiError) as caught:
            await transport.send(HttpRequest("GET", odd_status + "/999"), stream=stream)
        assert caught.value.code is ErrorCode.PROTOCOL_ERROR
        assert "999" in str(caught.value)
        assert transport.stats()["in_use"] == 0  # the refused answer gave its slot back
        ok = await transport.send(HttpRequest("GET", odd_status + "/599"))
        assert ok.status_code == 599 and ok.content == b"ok"
    finally:
        await transport.aclose()


async def test_status_below_100_is_a_protocol_error(odd_status: str) -> None:
    """``HTTP/1.1 042`` is refused with PROTOCOL_ERROR (aiohttp's parser accepts it)."""
    transport = AiohttpTransport()
    try:
        with pytest.raises(FlextApiError) as caught:
            await transport.send(HttpRequest("GET", odd_status + "/042"))
        assert caught.value.code is ErrorCode.PROTOCOL_ERROR
    finally:
        await transport.aclose()
