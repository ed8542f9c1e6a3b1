"""A request body whose own source raises: UNEXPECTED_ERROR caused by that error, on every
transport that streams bodies (it is the caller's failure, not the connection's)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest
from flext_api.transports import H1Transport
from tests.integration.transports._transports import TRANSPORTS

# httpx2 let the source's own error out of send() as it was (not a FlextApiError);
# pyreqwest said UNEXPECTED_ERROR without naming the body.


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
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


async def test_a_failed_upload_leaves_no_unretrieved_error_behind() -> None:
    """H1Transport: the connection given up after the body failed is closed, and its
    ``connection_lost`` then failed the pending head future nobody awaited any more:
    asyncio logged "Future exception was never retrieved" when it was collected."""
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        closed.set()  # the client's socket is closed: its connection_lost has run
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/upload"
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise SourceFailed("disk gone")

    transport = H1Transport()
    try:
        with pytest.raises(FlextApiError):
            await transport.send(HttpRequest("POST", url, stream=body()))
        await asyncio.wait_for(closed.wait(), 30)  # a hang guard only
        await transport.aclose()
        del transport
        gc.collect()
        await asyncio.sleep(0)
        assert [c for c in reported if "never retrieved" in str(c.get("message"))] == []
    finally:
        loop.set_exception_handler(previous)
        server.close()
        await server.wait_closed()
