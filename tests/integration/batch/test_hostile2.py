"""Batches and pagination against a real local server that echoes what it was asked:
a page-number endpoint ignoring the page (its bodies all differ), an endpoint honouring
Idempotency-Key as payment APIs do, and a body holding a number past 64 bits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from flext_api import ClientConfig, ErrorCode, RetryConfig
from flext_api.client import BatchJournal, BatchRequest, FlextApiClient, PageNumber

pytestmark = pytest.mark.integration

BIG = 123456789012345678901234567890


class _Server:
    def __init__(self) -> None:
        self.url = ""
        self.hits = 0
        self.created: list[object] = []
        self.replays: dict[str, web.Response] = {}

    async def echo(self, request: web.Request) -> web.Response:
        """The same records whatever page is asked for, with the page echoed back."""
        self.hits += 1
        return web.json_response({"page": request.query.get("page"), "items": ["a", "b"]})

    async def pay(self, request: web.Request) -> web.Response:
        """Creates a payment, unless the Idempotency-Key was seen: then the first answer."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.replays:
            return self.replays[key]
        body = await request.json()
        self.created.append(body["n"])
        response = web.json_response({"created": body["n"]})
        if key is not None:
            self.replays[key] = web.json_response({"created": body["n"]})
        return response

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"amount": %d}' % BIG, content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    state = _Server()
    app = web.Application()
    app.router.add_get("/echo", state.echo)
    app.router.add_post("/pay", state.pay)
    app.router.add_get("/big", state.big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


def _client(server: _Server) -> FlextApiClient:
    return FlextApiClient(server.url, config=ClientConfig(retry=RetryConfig(max_retries=0)))


async def test_an_echoing_server_ignoring_the_page_is_stopped(server: _Server) -> None:
    """Before: endless (every body differs; max_pages=50 only bounds this test).
    After: repeated_page on the second page."""
    async with _client(server) as client:
        paginator = client.paginate("/echo", strategy=PageNumber(), max_pages=50)
        result = await paginator.collect()
        retried = await paginator.collect()
    assert result.exception is not None
    assert result.exception.code is ErrorCode.PROTOCOL_ERROR
    assert result.exception.details["reason"] == "repeated_page"
    assert retried.exception is not None
    assert retried.exception.details["reason"] == "repeated_page"
    assert server.hits == 3  # page 1, page 2 (refused), page 2 again on the retry


async def test_a_batch_does_not_share_one_idempotency_key(server: _Server) -> None:
    """Before: the key went with every item and the server created only the first
    payment, answering the others with it while the batch said success. After: the
    shared key is refused; idempotency_key=True gives each item its own."""
    items = [BatchRequest(n, "/pay", method="POST", json={"n": n}) for n in range(3)]
    async with _client(server) as client:
        with pytest.raises(ValueError, match="a str idempotency_key"):
            client.batch(items, request_options={"idempotency_key": "pay-run-1"})
        results = [r async for r in client.batch(items, request_options={"idempotency_key": True})]
    assert sorted(r.data["created"] for r in results) == [0, 1, 2]
    assert sorted(server.created) == [0, 1, 2]  # type: ignore[type-var]
    assert len(server.replays) == 3


async def test_a_journal_stores_a_big_number_and_resumes(server: _Server, tmp_path: Path) -> None:
    """Before: TypeError from the journal after the first result. After: stored exactly."""
    path = tmp_path / "run.journal"
    async with _client(server) as client:
        journal = BatchJournal(path, store_results=True)
        first = [r async for r in client.batch([BatchRequest(BIG, "/big")], journal=journal)]
        again = [r async for r in client.batch([BatchRequest(BIG, "/big")], journal=path)]
    assert [r.data for r in first] == [{"amount": BIG}]
    assert again == []
    assert str(BIG) in path.read_text()
