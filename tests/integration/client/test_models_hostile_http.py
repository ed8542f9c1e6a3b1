"""Response decoding over real HTTP: odd charsets from the fault server."""

from __future__ import annotations

import pytest

from flext_api.client import FlextApiClient
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

LINES = ["first line", "zweite Zeile: grüße", "третья строка", "€ last"]


async def test_utf16_without_bom_streams_line_by_line(fault: FaultServer) -> None:
    """A chunked utf-16 body without a BOM (RFC 2781 allows it) reads line by line as
    text reads it; the incremental decoder refused it with an untyped UnicodeError."""
    body = "\r\n".join(LINES).encode("utf-16-le")

    async def utf16(req: Request, w: ResponseWriter) -> None:
        head = [("Content-Type", "text/plain; charset=utf-16"), ("Transfer-Encoding", "chunked")]
        await w.send_head(200, head)
        for start in range(0, len(body), 7):  # odd sizes: code units cut in two
            await w.write_chunk(body[start : start + 7])
        await w.end_chunks()

    route = fault.add_route(r"/models-hostile-utf16", utf16)
    try:
        async with FlextApiClient(fault.url) as client:
            async with client.stream("GET", "/models-hostile-utf16") as response:
                lines = [line async for line in response.aiter_lines()]
            whole = await client.get("/models-hostile-utf16")
    finally:
        fault.remove_route(route)
    assert lines == LINES
    assert whole.value.text.splitlines() == LINES


async def test_a_charset_that_cannot_decode_text_reads_as_utf8(fault: FaultServer) -> None:
    """Content-Type charset=idna (refuses errors="replace") reads as utf-8 in text,
    json() and aiter_lines instead of raising UnicodeError."""

    async def idna(req: Request, w: ResponseWriter) -> None:
        await w.send(
            200, '{"name": "grüße"}\n'.encode(), content_type="application/json; charset=idna"
        )

    route = fault.add_route(r"/models-hostile-idna", idna)
    try:
        async with FlextApiClient(fault.url) as client:
            response = (await client.get("/models-hostile-idna")).value
            async with client.stream("GET", "/models-hostile-idna") as streamed:
                lines = [line async for line in streamed.aiter_lines()]
    finally:
        fault.remove_route(route)
    assert response.text == '{"name": "grüße"}\n'
    assert response.json() == {"name": "grüße"}
    assert lines == ['{"name": "grüße"}']
