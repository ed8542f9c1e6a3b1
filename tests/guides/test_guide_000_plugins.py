"""Seed 000, "Custom Plugin Development": dict-hook plugins on the guide's client."""

from __future__ import annotations

import pytest

from tests.guides.conftest import Events, at_httpbin, without_sleeps
from tests.guides.seed import s000_plugins as guide
from tests.servers.httpbin_server import HttpbinServer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch, httpbin_server: HttpbinServer) -> None:
    at_httpbin(monkeypatch, guide, httpbin_server)
    without_sleeps(monkeypatch, guide)


def test_advanced_plugin_example_completes_every_request(events: Events) -> None:
    """The five requests succeed through the logging and throttling plugins."""
    result = guide.advanced_plugin_example()
    result.data.close()
    assert result.success
    done = [e["event"] for e in events.entries if e["event"].endswith("completed successfully")]
    assert done == [f"Request {i} completed successfully" for i in range(1, 6)]


def test_logging_plugin_sees_its_request_id_on_the_response(events: Events) -> None:
    """after_response reads the _request_id before_request set: every start has its end."""
    guide.advanced_plugin_example().data.close()
    started = events.named("HTTP request starting")
    completed = events.named("HTTP request completed")
    assert [e["request_id"] for e in started] == [e["request_id"] for e in completed]
    assert len(completed) == 5
    assert {e["status_code"] for e in completed} == {200}
    assert [e["url"].rsplit("=", 1)[-1] for e in started] == ["0", "1", "2", "3", "4"]


def test_logging_plugin_logs_the_response_data(events: Events) -> None:
    """With include_body the decoded JSON body of httpbin is logged."""
    guide.advanced_plugin_example().data.close()
    completed = events.named("HTTP request completed")
    assert completed[0]["response_data"]["args"] == {"request": "0"}


def test_throttling_plugin_fails_the_request_over_its_limit(httpbin_server: HttpbinServer) -> None:
    """Over max_requests in the window, before_request's failure stops the call."""
    from flext_api import create_flext_api

    throttle = guide.RequestThrottlingPlugin(max_requests=2, window_seconds=60)
    made = create_flext_api().flext_api_create_client_with_plugins(
        {"base_url": httpbin_server.url, "timeout": 30}, [throttle]
    )
    with made.data as client:
        outcomes = [client.get("/get").success for _ in range(3)]
        third = client.get("/get")
    assert outcomes == [True, True, False]
    assert third.error is not None and third.error.startswith("Rate limit exceeded. Wait")
