"""client.stream(): bodies read as they arrive; the connection always goes back."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode, FlextApiError
from flext_api.client import FlextApiClient
from tests._poll import eventually
from tests.servers.fault import FaultServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aiohttp_path")]


async def test_aiter_bytes_reads_a_chunked_body(fault: FaultServer) -> None:
    """Every chunk of a chunked response arrives, in order."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        async with client.stream("GET", "/stream", params={"chunks": 5, "size": 1000}) as resp:
            assert resp.status_code == 200
            body = b"".join([chunk async for chunk in resp.aiter_bytes()])
        assert client.stats()["pool"]["in_use"] == 0
    assert body == b"".join(bytes([97 + i]) * 1000 for i in range(5))


async def test_aiter_lines_reads_server_sent_events(fault: FaultServer) -> None:
    """aiter_lines yields the SSE lines as text."""
    client = FlextApiClient(fault.url, default_plugins=False)
    async with client, client.stream("GET", "/sse", params={"events": 3}) as resp:
        lines = [line async for line in resp.aiter_lines()]
    assert [line for line in lines if line] == ["data: 0", "data: 1", "data: 2"]


async def test_leaving_the_block_early_releases_the_connection(fault: FaultServer) -> None:
    """Breaking out after one chunk gives the slot back to the pool."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        async with client.stream("GET", "/stream", params={"chunks": 50, "size": 65536}) as resp:
            async for _ in resp.aiter_bytes():
                break
        assert client.stats()["pool"]["in_use"] == 0
        assert (await client.get("/status/200")).is_success


async def test_cancelling_a_stream_releases_the_connection(fault: FaultServer) -> None:
    """Cancelling the task reading a slow stream frees its pool slot."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:

        async def reader() -> None:
            async with client.stream(
                "GET", "/slow-body", params={"chunks": 100, "interval": 0.05}
            ) as resp:
                async for _ in resp.aiter_bytes():
                    pass

        task = asyncio.create_task(reader())
        assert await eventually(lambda: client.stats()["pool"]["in_use"] == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.stats()["pool"]["in_use"] == 0


async def test_failed_stream_raises_with_the_body(fault: FaultServer) -> None:
    """A 404 raises HttpStatusError on entry, the body already read, the slot released."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        with pytest.raises(FlextApiError) as info:
            async with client.stream("GET", "/status/404"):
                pass  # pragma: no cover - never entered
        assert client.stats()["pool"]["in_use"] == 0
    assert info.value.code is ErrorCode.HTTP_STATUS
    assert info.value.response is not None
    assert info.value.response.json() == {"status": 404}


async def test_truncated_stream_raises_protocol_error_while_reading(fault: FaultServer) -> None:
    """A body cut short raises PROTOCOL_ERROR from the iterator and releases the slot."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        with pytest.raises(FlextApiError) as info:
            async with client.stream("GET", "/truncated") as resp:
                await resp.aread()
        assert client.stats()["pool"]["in_use"] == 0
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
