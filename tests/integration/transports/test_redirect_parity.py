"""A redirect's ``Location`` reaches the next request the same way on every transport.

A space or a non-ASCII character in ``Location`` is percent-encoded before the next hop,
as a caller's own URL is. aiohttp and H1Transport wrote a space raw into the request
line (``GET /a b HTTP/1.1``: the server reads the target ``/a`` and a bogus version) and
aiohttp dropped a byte that is not UTF-8 (``/caf\\xe9`` went out as ``/caf``). Checked
over a raw server on 127.0.0.1 that records each request line as it came.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextResult, HttpResponse
from flext_api.client import FlextApiClient
from tests.integration.transports._transports import TRANSPORTS

pytestmark = pytest.mark.integration


LOCATIONS: dict[bytes, bytes] = {
    b"/space": b"/to/a b?q=c d",
    b"/utf8": "/to/caf\u00e9".encode(),
    b"/latin1": b"/to/caf\xe9",
    b"/absolute-space": b"http://127.0.0.1:{port}/to/x y",
    b"/control": b"/to/a\x01b",
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """``/<name>`` answers 302 to ``LOCATIONS[name]``; any other target 200. Every
    request line is kept as received."""
    lines: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        try:
            while line := await reader.readline():
                lines.append(line.rstrip(b"\r\n"))
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                target = line.split(b" ")[1]
                location = LOCATIONS.get(target)
                if location is None:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    location = location.replace(b"{port}", str(port).encode())
                    writer.write(
                        b"HTTP/1.1 302 Found\r\nLocation: "
                        + location
                        + b"\r\nContent-Length: 0\r\n\r\n"
                    )
                await writer.drain()
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}", lines
    listener.close()
    await listener.wait_closed()


async def _follow(name: str, base: str, path: str) -> FlextResult[HttpResponse]:
    async with FlextApiClient(base, transport=TRANSPORTS[name](), timeout=10) as client:
        return await client.get(path, retry=0)


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/space", b"GET /to/a%20b?q=c%20d HTTP/1.1"),
        ("/absolute-space", b"GET /to/x%20y HTTP/1.1"),
    ],
)
async def test_a_space_in_location_is_percent_encoded(
    server: tuple[str, list[bytes]], name: str, path: str, expected: bytes
) -> None:
    base, lines = server
    result = await _follow(name, base, path)
    assert result.is_success, result.error
    assert lines[-1] == expected


@pytest.mark.parametrize("name", ["aiohttp", "h1", "httpx"])
async def test_a_utf8_location_is_percent_encoded_as_utf8(
    server: tuple[str, list[bytes]], name: str
) -> None:
    """Octet for octet (pyreqwest cannot read a non-ASCII header at all). H1Transport
    read the octets as Latin-1 and sent each one encoded again as UTF-8 (``%C3%83%C2%A9``)."""
    base, lines = server
    result = await _follow(name, base, "/utf8")
    assert result.is_success, result.error
    assert lines[-1] == b"GET /to/caf%C3%A9 HTTP/1.1"


@pytest.mark.parametrize("name", ["aiohttp", "h1", "httpx"])
async def test_a_location_byte_that_is_not_utf8_is_not_dropped(
    server: tuple[str, list[bytes]], name: str
) -> None:
    """``/to/caf\\xe9``: the next request line is ASCII, well formed, and keeps the
    octet as it came (``%E9``)."""
    base, lines = server
    result = await _follow(name, base, "/latin1")
    assert result.is_success, result.error
    assert lines[-1] == b"GET /to/caf%E9 HTTP/1.1"


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_control_character_in_location_is_refused(
    server: tuple[str, list[bytes]], name: str
) -> None:
    """Not encoded into the next request: refused, as in a caller's own URL (h1 and
    pyreqwest already refuse the answer: a control character is not valid in a header)."""
    base, lines = server
    result = await _follow(name, base, "/control")
    assert result.error_code in (ErrorCode.INVALID_REQUEST, ErrorCode.PROTOCOL_ERROR)
    assert lines == [b"GET /control HTTP/1.1"]
