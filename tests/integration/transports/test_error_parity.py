"""Faults the other parity suites do not make, with one ErrorCode on every transport.

HTTPS to a port that speaks plain HTTP, answering the handshake with an HTTP error
(nginx's "400 The plain HTTP request was sent to HTTPS port"), is ``TLS_ERROR`` (never
retried: the next attempt would meet the same server). pyreqwest said ``CONNECT_ERROR``,
which is retried for any method. H1Transport has no
TLS of its own (an ``https://`` URL goes to its ``fallback``) and is not in this table.

A URL the transport cannot send (a port past 65535, a port that is not a number, an
unclosed IPv6 bracket) is ``INVALID_REQUEST``: httpx2 let a bare ``InvalidURL`` or
``OverflowError`` out. A timeout too long for a ``timedelta`` (a valid setting) is no
bound: pyreqwest raised a bare ``OverflowError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest, TimeoutConfig
from flext_api.transports import H1Transport
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


@pytest.fixture
async def ok_url() -> AsyncIterator[str]:
    """The URL of a server on 127.0.0.1 that answers every request ``200 ok``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("name", [*sorted(TRANSPORTS), "h1"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://127.0.0.1:x/", "http://[::1/"])
async def test_a_url_no_transport_can_send_is_invalid_request(name: str, url: str) -> None:
    """A port past 65535 or not a number, or an unclosed IPv6 bracket: INVALID_REQUEST
    (h1 said UNEXPECTED_ERROR and DNS_ERROR for two of them)."""
    transport = H1Transport() if name == "h1" else TRANSPORTS[name]()
    try:
        with pytest.raises(FlextApiError) as caught:
            await asyncio.wait_for(transport.send(HttpRequest("GET", url)), 30)
        assert caught.value.code is ErrorCode.INVALID_REQUEST
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_timeout_longer_than_a_timedelta_is_no_bound(ok_url: str, name: str) -> None:
    """A valid but vast timeout and deadline (past timedelta's range) bound nothing."""
    vast = TimeoutConfig(connect=1e15, read=1e15, write=1e15, pool=1e15, total=1e15)
    transport = TRANSPORTS[name]()
    try:
        request = HttpRequest("GET", ok_url, timeout=vast, deadline=1e15)
        response = await asyncio.wait_for(transport.send(request), 30)
        assert response.content == b"ok"
    finally:
        await transport.aclose()
