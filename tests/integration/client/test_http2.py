"""The httpx2 transport speaks HTTP/2 to a real hypercorn server over TLS."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ClientConfig, ErrorCode
from flext_api.client import FlextApiClient
from flext_api.transports import HttpxTransport
from tests.servers.h2_server import H2Server

pytestmark = pytest.mark.integration


async def test_http2_version_is_reported(h2_server: H2Server) -> None:
    """config.http2 selects the httpx2 transport and the response says HTTP/2."""
    config = ClientConfig(http2=True)
    async with FlextApiClient(
        h2_server.url, config=config, default_plugins=False, ssl_context=h2_server.ssl_context()
    ) as client:
        result = await client.get("/hello")
        assert isinstance(client.transport, HttpxTransport)
    response = result.value
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "2"


async def test_many_concurrent_requests_share_one_connection(h2_server: H2Server) -> None:
    """50 concurrent requests are multiplexed over a single HTTP/2 connection."""
    h2_server.reset()
    config = ClientConfig(http2=True)
    async with FlextApiClient(
        h2_server.url, config=config, default_plugins=False, ssl_context=h2_server.ssl_context()
    ) as client:
        results = await asyncio.gather(*(client.get(f"/item/{i}") for i in range(50)))
        assert client.stats()["pool"]["connections"] == 1
    assert all(r.value.status_code == 200 for r in results)
    assert h2_server.connections_seen == 1


async def test_untrusted_certificate_is_tls_error(h2_server: H2Server) -> None:
    """Without the test CA the certificate is refused with TLS_ERROR (both transports)."""
    for config in (ClientConfig(http2=True), ClientConfig()):
        async with FlextApiClient(h2_server.url, config=config, default_plugins=False) as client:
            result = await client.get("/x")
        assert result.error_code is ErrorCode.TLS_ERROR, config.transport


@pytest.mark.usefixtures("aiohttp_path")
async def test_aiohttp_transport_speaks_tls_with_the_given_ca(h2_server: H2Server) -> None:
    """The default transport verifies with ``ssl_context`` (and skips checks on verify=False)."""
    async with FlextApiClient(
        h2_server.url, default_plugins=False, ssl_context=h2_server.ssl_context()
    ) as client:
        trusted = await client.get("/hello")
    async with FlextApiClient(
        h2_server.url, config=ClientConfig(verify_ssl=False), default_plugins=False
    ) as client:
        unverified = await client.get("/hello")
    assert trusted.value.http_version == "HTTP/1.1"
    assert trusted.value.json()["http_version"] == "1.1"
    assert unverified.value.status_code == 200
