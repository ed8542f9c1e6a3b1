"""An answer the parser refuses is told apart from a connection closed early: both are
``PROTOCOL_ERROR``, and the first carries ``details["reason"] == "invalid_message"``
(the gateway answers it with 502 ``invalid_response``, not ``upstream_reset``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from flext_api import ErrorCode, FlextApiClient
from flext_api.transports import AiohttpTransport, H1Transport, Transport
from flext_api.transports._base import INVALID_MESSAGE

TRANSPORTS: dict[str, Callable[[], Transport]] = {"aiohttp": AiohttpTransport, "h1": H1Transport}
ANSWERS = {
    "space-in-a-name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "cr-in-a-value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
}


async def _serve(answer: bytes | None) -> AsyncIterator[str]:
    """A server on 127.0.0.1 writing ``answer`` to every request (None: closing at once)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = b""
        while b"\r\n\r\n" not in seen:
            data = await reader.read(65536)
            if not data:
                break
            seen += data
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        listener.close()
        await listener.wait_closed()


async def _get(name: str, answer: bytes | None) -> tuple[ErrorCode | None, object]:
    async for url in _serve(answer):
        async with FlextApiClient(url, transport=TRANSPORTS[name](), timeout=5) as client:
            result = await client.get("/", retry=0)
        assert result.is_failure
        assert result.exception is not None
        return result.error_code, result.exception.details.get("reason")
    raise AssertionError("no server")


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_an_answer_that_is_not_http_says_so(name: str, answer: str) -> None:
    assert await _get(name, ANSWERS[answer]) == (ErrorCode.PROTOCOL_ERROR, INVALID_MESSAGE)


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_connection_closed_before_answering_is_no_invalid_message(name: str) -> None:
    code, reason = await _get(name, None)
    assert code is ErrorCode.PROTOCOL_ERROR
    assert reason is None
