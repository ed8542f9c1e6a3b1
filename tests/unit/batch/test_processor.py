"""BatchProcessor (list in, list out) and the blocking batch_sync."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api import HttpRequest, HttpResponse
from flext_api.client import FlextApiSyncClient
from flext_api.client.batch._models import BatchProgress, BatchRequest
from flext_api.client.batch._processor import BatchProcessor, batch_sync
from flext_api.transports import MockTransport

from ._helpers import json_response, make_client, ok_handler


async def _slow_first(request: HttpRequest) -> HttpResponse:
    if request.url.endswith("/0"):
        await asyncio.sleep(0.01)
    return ok_handler(request)


async def test_process_batch_returns_results_in_input_order() -> None:
    """Results come back in input order even when the first item finishes last."""
    items: list[Any] = [{"id": i, "method": "GET", "path": f"/users/{i}"} for i in range(20)]
    async with BatchProcessor(
        "http://svc",
        max_concurrent=5,
        transport=MockTransport(_slow_first),
        default_plugins=False,
    ) as processor:
        results = await processor.process_batch(items)
    assert [r.request_id for r in results] == list(range(20))
    assert results[3].data == {"path": "/users/3"}


async def test_process_batch_mixes_dicts_and_requests_and_reports_progress() -> None:
    """Dicts and BatchRequests are both accepted; progress_callback gets snapshots."""
    snapshots: list[BatchProgress] = []
    async with BatchProcessor(
        "http://svc", transport=MockTransport(ok_handler), default_plugins=False
    ) as processor:
        results = await processor.process_batch(
            [{"id": "a", "path": "/a"}, BatchRequest("b", "/b"), {"id": "c"}],
            progress_callback=snapshots.append,
        )
    assert [r.success for r in results] == [True, True, False]
    assert snapshots[-1].done == 3 and snapshots[-1].failed == 1


async def test_processor_closes_the_client_it_created() -> None:
    """Leaving the context closes the processor's own client."""
    async with BatchProcessor(
        "http://svc", transport=MockTransport(ok_handler), default_plugins=False
    ) as processor:
        assert repr(processor) == "<BatchProcessor base_url='http://svc' max_concurrent=50>"
    assert processor.client.is_closed


async def test_processor_leaves_a_borrowed_client_open() -> None:
    """A client passed in belongs to the caller and is not closed."""
    client = make_client()
    async with client, BatchProcessor(client=client, max_concurrent=2) as processor:
        results = await processor.process_batch([BatchRequest("a", "/x")])
        assert results[0].success
    assert processor.client is client


def test_processor_argument_errors() -> None:
    """max_concurrent must be positive; client= excludes the client options."""
    with pytest.raises(ValueError, match="max_concurrent"):
        BatchProcessor("http://svc", max_concurrent=0)
    with pytest.raises(TypeError, match="either client="):
        BatchProcessor("http://svc", client=make_client())


def test_batch_sync_yields_results_for_a_blocking_caller() -> None:
    """batch_sync runs the batch on the sync client's loop and yields each result."""
    with FlextApiSyncClient(
        "http://svc", transport=MockTransport(ok_handler), default_plugins=False
    ) as client:
        results = list(batch_sync(client, [BatchRequest(i, f"/{i}") for i in range(30)]))
    assert sorted(r.request_id for r in results) == list(range(30))  # type: ignore[type-var]


def test_batch_sync_stops_when_the_loop_is_left() -> None:
    """Leaving the for loop early closes the batch on the client's loop."""
    started = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal started
        started += 1
        if not request.url.endswith("/0"):
            await asyncio.sleep(60)
        return json_response()

    with FlextApiSyncClient(
        "http://svc", transport=MockTransport(handler), default_plugins=False
    ) as client:
        results = batch_sync(client, [BatchRequest(i, f"/{i}") for i in range(100)], concurrency=4)
        for result in results:
            assert result.request_id == 0
            break
        results.close()  # type: ignore[attr-defined]
        assert started <= 5
