"""Percent-encoded dot segments (``%2e%2e``, ``.%2E``...) in a request path are dot
segments, as WHATWG URL parsing and many servers read them: resolved before sending,
and refused when they climb above the base URL's path, exactly as literal ``..``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client._request import remove_dot_segments
from flext_api.transports import AiohttpTransport, H1Transport, HttpxTransport, Transport
from tests.servers.fault import FaultServer

TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "h1": H1Transport,
    "httpx2": HttpxTransport,
}


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/a/%2e%2e/b", "/b"),
        ("/a/b/%2E%2e/%2e%2E/c", "/c"),
        ("/a/.%2e/b", "/b"),
        ("/a/%2e./b", "/b"),
        ("/a/%2e/b", "/a/b"),
        ("/a/b/%2e%2e", "/a/"),
        ("/a/%2e%2e%2e/b", "/a/%2e%2e%2e/b"),
        ("/a/%2e%2f%2e/b", "/a/%2e%2f%2e/b"),
    ],
)
def test_percent_encoded_dot_segments_are_removed_like_literal_ones(
    path: str, resolved: str
) -> None:
    """``%2e`` in any case makes a dot segment only when the whole segment is dots."""
    assert remove_dot_segments(path) == resolved


@pytest.mark.integration
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize(
    "url",
    [
        "a/%2e%2e/%2e%2e/admin",
        "/a/%2E%2e/%2e%2E/%2e%2e/admin",
        "a/.%2e/.%2E/admin",
        "a/%2e./%2E./admin",
        "%2e%2e",
    ],
)
async def test_an_encoded_dot_dot_climbing_above_the_base_path_is_refused(
    fault: FaultServer, transport: str, url: str
) -> None:
    """``%2e%2e`` may not leave the base URL's path any more than ``..``:
    INVALID_REQUEST, nothing sent (it reached the server as is, where a decoding
    server climbed to ``/admin``)."""
    async with FlextApiClient(
        f"{fault.url}/api/v1/", transport=TRANSPORTS[transport](), default_plugins=False
    ) as client:
        result = await client.get(url)
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert "climbs above" in err.message
    assert fault.requests == []


@pytest.mark.integration
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_encoded_dot_segments_reach_every_transport_resolved(
    fault: FaultServer, transport: str
) -> None:
    """Encoded dot segments within the base path, and in an absolute URL, are resolved
    before sending, so the server sees the path the WHATWG parser would."""
    async with FlextApiClient(
        fault.url, transport=TRANSPORTS[transport](), default_plugins=False
    ) as client:
        joined = await client.get("items/%2e/%2E%2e/echo")
        absolute = await client.get(f"{fault.url}/a/b/%2e%2e/.%2E/echo")
    assert joined.is_success and absolute.is_success
    assert [r.path for r in fault.requests] == ["/echo", "/echo"]
