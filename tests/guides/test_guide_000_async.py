"""Seed 000: the async wrapper, batch processing and caching patterns on the guide's client."""

from __future__ import annotations

import pytest

from tests.guides.conftest import Events, at_httpbin, without_sleeps
from tests.guides.seed import s000_async_wrapper as async_guide
from tests.guides.seed import s000_batch as batch_guide
from tests.guides.seed import s000_caching as caching_guide
from tests.servers.httpbin_server import HttpbinServer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch, httpbin_server: HttpbinServer) -> None:
    for module in (async_guide, batch_guide, caching_guide):
        at_httpbin(monkeypatch, module, httpbin_server)
    without_sleeps(monkeypatch, caching_guide)


async def test_concurrent_requests_all_succeed(events: Events) -> None:
    """Five GETs run concurrently from executor threads on one client; all succeed."""
    await async_guide.concurrent_requests_example()
    assert len(events.named("Async client initialized")) == 1
    (summary,) = [e for e in events.entries if e["event"].startswith("Concurrent requests")]
    assert summary["event"] == "Concurrent requests completed: 5/5 successful"


async def test_async_wrapper_answers_with_response_dicts(httpbin_server: HttpbinServer) -> None:
    """get_async's result holds the response dict, httpbin's JSON under "data"."""
    wrapper = async_guide.AsyncFlextApiWrapper(httpbin_server.url)
    assert (await wrapper.initialize()).data is True
    result = await wrapper.get_async("/json")
    assert result.data["status_code"] == 200
    assert "slideshow" in result.data["data"]


async def test_async_wrapper_refuses_calls_before_initialize() -> None:
    """Before initialize() the wrapper's calls are failures, as the guide writes them."""
    wrapper = async_guide.AsyncFlextApiWrapper("http://127.0.0.1:9")
    assert (await wrapper.post_async("/post")).error == "Client not initialized"


async def test_batch_example_processes_every_request(events: Events) -> None:
    """The 20 GETs and 5 POSTs of the batch example all succeed, progress reaching 25/25."""
    await batch_guide.batch_processing_example()
    (done,) = events.named("Batch processing completed")
    assert (done["total"], done["successful"], done["failed"]) == (25, 25, 0)
    progress = [e["event"] for e in events.entries if e["event"].startswith("Progress:")]
    assert len(progress) == 25
    assert "Progress: 25/25 (100.0%)" in progress


async def test_batch_results_hold_the_response_data(httpbin_server: HttpbinServer) -> None:
    """A POST's BatchResult.data is the response dict with the JSON httpbin echoed."""
    processor = batch_guide.BatchProcessor(httpbin_server.url, max_concurrent=2)
    assert processor.initialize().success
    request = batch_guide.BatchRequest(id="p", method="POST", path="/post", data={"m": 1})
    (result,) = await processor.process_batch([request])
    assert result.success and result.data is not None
    assert result.data["data"]["json"] == {"m": 1}


def test_caching_example_makes_every_request_once(events: Events) -> None:
    """The example's params differ on every call, so each is a miss and is cached."""
    caching_guide.advanced_caching_example()
    outcomes = [e["cached"] for e in events.entries if e["event"].endswith("Request successful")]
    assert outcomes == [False] * 5
    (stats,) = events.named("Cache statistics")
    assert (stats["hits"], stats["misses"], stats["cache_size"]) == (0, 5, 5)


def test_caching_plugin_answers_a_repeat_from_its_cache(httpbin_server: HttpbinServer) -> None:
    """The same GET twice: the second answer is the plugin's, marked _from_cache."""
    from flext_api import create_flext_api

    plugin = caching_guide.AdvancedCachingPlugin(ttl=60)
    made = create_flext_api().flext_api_create_client_with_plugins(
        {"base_url": httpbin_server.url, "timeout": 10}, [plugin]
    )
    with made.data as client:
        first = client.get("/get", params={"request": 1})
        second = client.get("/get", params={"request": 1})
    assert first.data.get("_from_cache", False) is False
    assert second.data["_from_cache"] is True
    assert second.data["data"] == first.data["data"]
    assert second.data.response.from_cache
    assert plugin.get_cache_stats()["hits"] == 1
