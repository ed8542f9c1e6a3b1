"""Faults the other parity suites do not make, with one ErrorCode on every transport.

HTTPS to a port that speaks plain HTTP, answering the handshake with an HTTP error
(nginx's "400 The plain HTTP request was sent to HTTPS port"), is ``TLS_ERROR`` (never
retried: the next attempt would meet the same server). pyreqwest said ``CONNECT_ERROR``,
which is retried for any method. H1Transport has no
TLS of its own (an ``https://`` URL goes to its ``fallback``) and is not in this table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest
from tests.integration.transports._transports import WITH_TLS as TRANSPORTS

pytestmark = pytest.mark.integration


@pytest.fixture
async def plain_port() -> AsyncIterator[str]:
    """An ``https://`` URL of a plain-HTTP server on 127.0.0.1."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(65536)  # the client's TLS ClientHello
            writer.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_https_to_a_plain_http_port_is_a_tls_error(plain_port: str, name: str) -> None:
    transport = TRANSPORTS[name]()
    try:
        with pytest.raises(FlextApiError) as caught:
            await asyncio.wait_for(transport.send(HttpRequest("GET", plain_port)), 30)
        assert caught.value.code is ErrorCode.TLS_ERROR
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()
