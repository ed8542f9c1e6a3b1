"""FlextApiSyncClient: blocking calls, shared by threads, closing without leftovers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flext_api import ErrorCode, create_flext_api
from flext_api.client import FlextApiSyncClient
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


def test_eight_threads_share_one_client(fault: FaultServer) -> None:
    """8 threads x 25 requests through one client all succeed; the pool is reused."""
    with FlextApiSyncClient(fault.url, default_plugins=False) as client:

        def work(n: int) -> list[int]:
            return [
                client.get("/echo", params={"t": n, "i": i}).value.status_code for i in range(25)
            ]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [s for batch in pool.map(work, range(8)) for s in batch]
        assert client.stats()["requests"] == 200
    assert statuses == [200] * 200
    assert len(fault.requests_to("/echo")) == 200
    assert fault.connections_opened <= 8


def test_close_stops_the_loop_thread(fault: FaultServer) -> None:
    """After close() no client thread is left and calls fail cleanly."""
    before = {t.name for t in threading.enumerate()}
    client = FlextApiSyncClient(fault.url, default_plugins=False)
    assert client.get("/status/200").is_success
    client.close()
    client.close()
    after = {t.name for t in threading.enumerate()}
    assert "flext-api-sync-client" not in after - before
    assert client.get("/status/200").error_code is ErrorCode.INVALID_REQUEST


def test_failures_are_results_not_exceptions(fault: FaultServer) -> None:
    """A 500 and a refused port come back as failed results."""
    with FlextApiSyncClient(fault.url, default_plugins=False) as client:
        assert client.get("/status/500").error_code is ErrorCode.HTTP_STATUS
        assert client.get("http://127.0.0.1:1/").error_code is ErrorCode.CONNECT_ERROR
        assert client.post("/echo", json={"a": 1}).value.json()["body"] == '{"a":1}'
        for method in ("put", "patch", "delete", "head", "options"):
            assert getattr(client, method)("/echo").is_success


def test_sync_stream(fault: FaultServer) -> None:
    """stream() yields chunks and lines with blocking iterators."""
    with FlextApiSyncClient(fault.url, default_plugins=False) as client:
        with client.stream("GET", "/stream", params={"chunks": 3, "size": 4}) as resp:
            assert resp.status_code == 200
            assert resp.headers["transfer-encoding"] == "chunked"
            assert b"".join(resp.iter_bytes()) == b"aaaabbbbcccc"
        with client.stream("GET", "/sse", params={"events": 2}) as resp:
            assert [x for x in resp.iter_lines() if x] == ["data: 0", "data: 1"]
        with client.stream("GET", "/bytes/10") as resp:
            assert resp.read() == bytes(range(10))
        assert client.stats()["pool"]["in_use"] == 0
        assert repr(client).startswith("<FlextApiSyncClient")


def test_facade_builds_clients(fault: FaultServer) -> None:
    """create_flext_api() makes sync and async clients with its configuration."""
    api = create_flext_api()
    with api.create_sync_client(fault.url, default_plugins=False) as client:
        assert client.get("/status/204").value.status_code == 204
    async_client = api.create_client(fault.url)
    assert async_client.base_url == fault.url
    assert repr(api) == "<FlextApi base_url=None>"


def test_sync_batch_and_paginate(fault: FaultServer) -> None:
    """The sync client runs batches and walks pages with blocking iterators."""
    from flext_api.client import BatchRequest, PageNumber

    with FlextApiSyncClient(fault.url, default_plugins=False) as client:
        results = list(
            client.batch([BatchRequest("a", "/status/200"), BatchRequest("b", "/status/404")])
        )
        records = list(
            client.paginate(
                "/pages/number", strategy=PageNumber(), params={"total": 12, "size": 5}
            ).items()
        )
    assert sorted((r.request_id, r.success) for r in results) == [("a", True), ("b", False)]
    assert [r["id"] for r in records] == list(range(12))
