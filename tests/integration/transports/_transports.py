"""The transports the parity tests run on, by name: each built fresh per test; and the
canned-answer server and body reader those tests share.

httpx2 and pyreqwest are imported when built, so a test module that names them loads
without them until a case uses them. httpx2 runs HTTP/1.1 (the raw servers of these
tests speak nothing else).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from flext_api import HttpResponse
from flext_api.transports import AiohttpTransport, H1Transport, Transport


def httpx_h1() -> Transport:
    """An ``HttpxTransport`` on HTTP/1.1."""
    from flext_api.transports import HttpxTransport

    return HttpxTransport(http2=False)


def pyreqwest() -> Transport:
    """A ``PyreqwestTransport`` with its defaults."""
    from flext_api.transports import PyreqwestTransport

    return PyreqwestTransport()


#: Every built-in network transport.
TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "h1": H1Transport,
    "httpx": httpx_h1,
    "pyreqwest": pyreqwest,
}
#: The transports that decode a body and speak TLS themselves (H1Transport passes bodies
#: through as they are, and hands ``https://`` to its fallback).
DECODING: dict[str, Callable[[], Transport]] = {
    name: TRANSPORTS[name] for name in ("aiohttp", "httpx", "pyreqwest")
}
WITH_TLS = DECODING


@asynccontextmanager
async def canned_server(answers: Mapping[str, bytes]) -> AsyncIterator[str]:
    """A raw server whose ``/<name>`` answers ``answers[name]`` byte for byte, then
    closes the connection; yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            name = (await reader.readline()).split()[1].decode().strip("/")
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(answers[name])
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def read_body(response: HttpResponse, *, stream: bool) -> bytes:
    """The body of ``response``: its content, or its chunks read to the end (then closed)."""
    if not stream:
        return response.content
    try:
        return b"".join([chunk async for chunk in response.aiter_bytes()])
    finally:
        await response.aclose()
