"""Batch items and pages whose relative path holds a URL ("/search?q=http://..."): the
path is joined to the base URL and grouped with the base host; only a leading scheme
makes a URL absolute."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api._errors import CircuitOpenError
from flext_api.client import FlextApiClient
from flext_api.client._plugin import CallNext
from flext_api.client.batch._batch import run_batch
from flext_api.client.batch._models import BatchRequest
from flext_api.client.pagination._strategies import NextUrl
from flext_api.testing import FakeClock
from tests.servers.httpbin_server import HttpbinServer

from ._helpers import collect, make_client, ok_handler


@pytest.mark.integration
async def test_a_batch_item_with_a_url_in_its_query_is_sent_to_the_base_server(
    httpbin_server: HttpbinServer,
) -> None:
    """BatchRequest("/get?q=http://...") reaches the base server with its query intact."""
    items = [
        BatchRequest("search", "/get?q=http://x.example/a&page=2"),
        BatchRequest("plain", "/get?q=plain"),
    ]
    async with FlextApiClient(httpbin_server.url, default_plugins=False) as client:
        results = await collect(client.batch(items, ordered=True))
    assert [(r.request_id, r.success) for r in results] == [("search", True), ("plain", True)]
    assert isinstance(results[0].data, dict)
    assert results[0].data["args"] == {"q": "http://x.example/a", "page": "2"}


class _OpenUntil:
    """Refuses requests to ``host`` (CIRCUIT_OPEN, retry_after ``wait``) until the clock
    reaches ``wait``; records the paths it refused."""

    def __init__(self, clock: FakeClock, host: str, wait: float) -> None:
        self.clock = clock
        self.host = host
        self.wait = wait
        self.until = clock.monotonic() + wait
        self.refused: list[str] = []

    async def __call__(
        self, request: HttpRequest, call_next: CallNext
    ) -> FlextResult[HttpResponse]:
        if request.host == self.host and self.clock.monotonic() < self.until:
            self.refused.append(request.url.partition("://svc")[2])
            return FlextResult.fail(CircuitOpenError("open", retry_after=self.wait))
        return await call_next(request)


async def test_a_path_holding_a_url_waits_out_its_base_hosts_pause() -> None:
    """An item "/search?q=http://elsewhere/" is held back while the base host is paused,
    not sent as if it were for the host named in its query."""
    clock = FakeClock(auto_advance=False)
    breaker = _OpenUntil(clock, "svc", 5.0)
    items = [
        BatchRequest("refused", "/item/0"),
        BatchRequest("query-url", "/search?q=http://elsewhere/x"),
        BatchRequest("other-host", "http://other/item/2"),
    ]
    async with make_client(ok_handler, breaker) as client:
        # buffer=3: the two items held back do not stop the third being read.
        batch = run_batch(client, items, concurrency=1, buffer=3, clock=clock)
        first = await anext(batch)
        # "svc" is paused: only the item for another host ran, nothing else was refused.
        assert first.request_id == "other-host"
        assert breaker.refused == ["/item/0"]
        clock.advance(5.0)
        rest = await collect(batch)
    assert sorted((r.request_id, r.success) for r in rest) == [
        ("query-url", True),
        ("refused", True),
    ]
    query_url = next(r for r in rest if r.request_id == "query-url")
    assert query_url.data == {"path": "/search?q=http://elsewhere/x"}


def _json(payload: Any) -> HttpResponse:
    return HttpResponse(
        200, content=orjson.dumps(payload), headers={"Content-Type": "application/json"}
    )


async def test_pagination_starts_at_a_path_holding_a_url() -> None:
    """client.paginate("/search?q=http://...") asks the base server for its first page."""
    seen: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        return _json({"items": [1], "next": None})

    async with make_client(handler) as client:
        result = await client.paginate("/search?q=http://x.example/", strategy=NextUrl()).collect()
    assert result.is_success, result
    assert result.value == [1]
    assert seen == ["http://svc/search?q=http://x.example/"]


async def test_a_next_link_to_an_opaque_uri_holding_a_url_is_a_decode_error() -> None:
    """A next link "mailto:...?body=http://..." names no page: DECODE_ERROR, and it is not
    fetched as a path of the base URL."""
    seen: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        return _json({"items": [1], "next": "mailto:ops@example.com?body=http://x.example/"})

    async with make_client(handler) as client:
        result = await client.paginate("/p", strategy=NextUrl()).collect()
    assert result.exception is not None
    assert result.exception.code is ErrorCode.DECODE_ERROR
    assert "is not an http(s) URL" in result.exception.message
    assert seen == ["http://svc/p"]
