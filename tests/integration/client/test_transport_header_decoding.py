"""Response header values read the same on every transport: one character per octet.

aiohttp read UTF-8 and turned other octets into lone surrogates (a value that failed any
later ``encode()``); httpx guessed per response; the h1 transport read ISO-8859-1. They
now all hand over what h1 and http.client do, lossless: ``value.encode("latin-1")`` is
the octets the server sent.
"""

from __future__ import annotations

import pytest

from flext_api import ClientConfig
from flext_api.client import FlextApiClient
from flext_api.transports import H1Transport
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

# Sent as octets (send_head encodes ISO-8859-1): caf + 0xE9, and caf + UTF-8 for é.
LATIN = "caf\u00e9"
UTF8_OCTETS = "caf\u00c3\u00a9"


async def _odd_headers(req: Request, w: ResponseWriter) -> None:
    headers = [("X-Utf8", UTF8_OCTETS), ("Content-Length", "2")]
    if req.param("latin"):
        headers.append(("X-Latin", LATIN))
    await w.send_head(200, headers)
    await w.write(b"ok")
    w.finish()


@pytest.mark.parametrize("name", ["aiohttp", "httpx", "h1"])
@pytest.mark.parametrize("query", ["?latin=1", ""], ids=["with-latin", "utf8-only"])
async def test_a_non_ascii_header_value_is_read_octet_for_octet(
    fault: FaultServer, name: str, query: str
) -> None:
    route = fault.add_route("/odd-header-octets", _odd_headers)
    try:
        if name == "h1":
            client = FlextApiClient(transport=H1Transport(), default_plugins=False)
        else:
            config = ClientConfig(transport=name)  # type: ignore[arg-type]
            client = FlextApiClient(config=config, default_plugins=False)
        async with client:
            response = (await client.get(fault.url + "/odd-header-octets" + query)).unwrap()
    finally:
        fault.remove_route(route)
    utf8 = response.headers["x-utf8"]
    assert utf8 == UTF8_OCTETS and utf8.encode("latin-1").decode("utf-8") == "caf\u00e9"
    if query:
        latin = response.headers["x-latin"]
        assert latin == LATIN and latin.encode("latin-1") == b"caf\xe9"
