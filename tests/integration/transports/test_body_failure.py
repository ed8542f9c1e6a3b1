"""A request body whose own source raises: UNEXPECTED_ERROR caused by that error, on every
transport that streams bodies (it is the caller's failure, not the connection's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest
from flext_api.transports import AiohttpTransport, H1Transport, Transport

TRANSPORTS: dict[str, Callable[[], Transport]] = {"aiohttp": AiohttpTransport, "h1": H1Transport}


class SourceFailed(Exception):
    """What the caller's body source raises."""


@pytest.fixture
async def sink() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that reads whatever is sent and never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/upload"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_failing_body_source_is_the_cause(sink: str, name: str) -> None:
    """aiohttp wrapped the source's error in its own and the transport reported a
    CONNECT_ERROR (retryable for any method); both transports now say UNEXPECTED_ERROR
    with the source's error as ``__cause__``, which the gateway reads."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise SourceFailed("disk gone")

    transport = TRANSPORTS[name]()
    try:
        with pytest.raises(FlextApiError) as caught:
            await transport.send(HttpRequest("POST", sink, stream=body()))
        assert caught.value.code is ErrorCode.UNEXPECTED_ERROR
        assert isinstance(caught.value.__cause__, SourceFailed)
        assert "the request body stream failed: disk gone" in str(caught.value)
    finally:
        await transport.aclose()
