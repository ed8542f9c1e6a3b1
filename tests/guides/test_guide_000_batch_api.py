"""Seed 000, "Batch Processing Pattern", with flext-api's own BatchProcessor/BatchRequest.

The guide defines these classes itself; flext-api's pinned ones accept the same calls,
so the example's body runs unchanged on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import BatchProcessor, BatchRequest, get_logger
from tests.guides.conftest import Events
from tests.servers.httpbin_server import HttpbinServer

pytestmark = pytest.mark.integration

logger = get_logger(__name__)


async def test_guide_batch_example_on_flext_api_classes(
    httpbin_server: HttpbinServer, events: Events
) -> None:
    """25 requests (20 GETs, 5 POSTs with data=) succeed; progress counts 1..25 of 25."""
    processor = BatchProcessor(httpbin_server.url, max_concurrent=5)
    init_result = processor.initialize()
    assert init_result.success

    # Create batch requests
    requests = [
        BatchRequest(id=f"req_{i}", method="GET", path="/get", params={"index": i})
        for i in range(20)
    ]

    # Add some POST requests
    requests.extend(
        [
            BatchRequest(
                id=f"post_{i}",
                method="POST",
                path="/post",
                data={"message": f"Batch message {i}", "timestamp": f"2024-01-{i:02d}"},
            )
            for i in range(1, 6)
        ]
    )

    calls: list[tuple[int, int]] = []

    # Progress callback
    def progress_callback(completed: int, total: int) -> None:
        calls.append((completed, total))
        percentage = (completed / total) * 100
        logger.info(f"Progress: {completed}/{total} ({percentage:.1f}%)")

    # Process batch
    results = await processor.process_batch(requests, progress_callback)
    await processor.aclose()

    successful = [r for r in results if r.success]
    assert len(successful) == 25
    assert sum(r.duration_ms for r in successful) > 0
    assert calls == [(n, 25) for n in range(1, 26)]
    assert results[20].request_id == "post_1"
    assert results[20].data["json"] == {"message": "Batch message 1", "timestamp": "2024-01-01"}
    assert events.entries[-1]["event"] == "Progress: 25/25 (100.0%)"


def test_batch_request_takes_json_or_data_not_both() -> None:
    """data= is the guide's name for the JSON body; giving both is a ValueError."""
    assert BatchRequest(id="a", path="/p", data={"x": 1}).json == {"x": 1}
    with pytest.raises(ValueError, match="not both"):
        BatchRequest(id="a", path="/p", data={"x": 1}, json={"y": 2})


async def test_initialize_fails_on_a_closed_processor() -> None:
    """initialize() is a failure once the processor's client is closed."""
    processor = BatchProcessor("http://127.0.0.1:9")
    await processor.aclose()
    result = processor.initialize()
    assert result.is_failure and result.error == "the processor's client is closed"


async def test_modern_progress_callback_still_gets_snapshots(httpbin_server: HttpbinServer) -> None:
    """A one-argument callback keeps receiving BatchProgress snapshots."""
    seen: list[int] = []
    async with BatchProcessor(httpbin_server.url) as processor:
        await processor.process_batch(
            [BatchRequest("a", "/get")], lambda progress: seen.append(progress.done)
        )
    assert seen[-1] == 1


async def test_counting_callback_counts_a_generator(httpbin_server: HttpbinServer) -> None:
    """A generator of requests is read into a list so the callback knows the total."""
    calls: list[tuple[int, int]] = []
    async with BatchProcessor(httpbin_server.url) as processor:
        await processor.process_batch(
            (BatchRequest(i, "/get") for i in range(2)),
            lambda done, total: calls.append((done, total)),
        )
    assert calls == [(1, 2), (2, 2)]


async def test_counting_callback_refuses_an_async_stream() -> None:
    """An async stream cannot be counted up front: a TypeError says so."""

    async def stream() -> AsyncIterator[BatchRequest]:
        yield BatchRequest("a", "/get")

    async with BatchProcessor("http://127.0.0.1:9") as processor:
        with pytest.raises(TypeError, match="as a list"):
            await processor.process_batch(stream(), lambda done, total: None)
