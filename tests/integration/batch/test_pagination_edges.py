"""Pagination against a small local server misbehaving in ways the fault server does not:
a server that ignores the page/offset parameter, a failure mid-way under ``collect()``,
and a ``resume_from`` request without the strategy's parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from flext_api import ClientConfig, ErrorCode, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.client.pagination._paginate import PaginationError, Paginator
from flext_api.client.pagination._strategies import Offset, PageNumber, PageRequest

pytestmark = pytest.mark.integration


class _Server:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.fail_page: int | None = None
        self.url = ""

    async def ignores(self, request: web.Request) -> web.Response:
        """The same first page whatever the page or offset asked for."""
        self.hits["ignores"] = self.hits.get("ignores", 0) + 1
        return web.json_response({"items": [1, 2, 3]})

    async def numbered(self, request: web.Request) -> web.Response:
        """Three pages of two records, then an empty page; ``fail_page`` answers 500.
        A page that is not a number is served as the first (as many servers do)."""
        raw = request.query.get("page", "1")
        page = int(raw) if raw.isdigit() else 1
        if page == self.fail_page:
            return web.Response(status=500)
        records = [n for n in range(6) if (page - 1) * 2 <= n < page * 2]
        return web.json_response({"items": records})


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    state = _Server()
    app = web.Application()
    app.router.add_get("/ignores", state.ignores)
    app.router.add_get("/numbered", state.numbered)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def _walk(paginator: Paginator, into: list[int]) -> None:
    """Iterate, keeping page numbers in ``into``; stop an endless walk with a failure."""
    async for page in paginator:
        into.append(page.number)
        assert page.number < 100, "unbounded pagination"


def _client(server: _Server) -> FlextApiClient:
    return FlextApiClient(server.url, config=ClientConfig(retry=RetryConfig(max_retries=0)))


@pytest.mark.parametrize("strategy", [PageNumber(), Offset(limit=3)])
async def test_a_server_ignoring_the_page_parameter_is_a_loop_not_endless(
    server: _Server, strategy: Any
) -> None:
    """Before: page 1 over and over, forever (the URL changes, so no loop was seen).
    After: the second, identical page raises PaginationError (repeated_page)."""
    async with _client(server) as client:
        paginator = client.paginate("/ignores", strategy=strategy)
        pages: list[int] = []
        with pytest.raises(PaginationError, match="same content") as info:
            await _walk(paginator, pages)
        result = await client.paginate("/ignores", strategy=strategy).collect()
    assert pages == [1]
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert info.value.details["reason"] == "repeated_page"
    assert info.value.details["page"] == 2
    assert result.is_failure
    assert server.hits["ignores"] == 4


async def test_a_retried_collect_keeps_the_pages_of_the_failed_one(server: _Server) -> None:
    """Before: collect() failing on page 3 dropped pages 1-2, and a retried collect()
    (resuming at page 3) returned a success without them. After: nothing is lost."""
    server.fail_page = 3
    async with _client(server) as client:
        paginator = client.paginate("/numbered", strategy=PageNumber())
        failed = await paginator.collect()
        server.fail_page = None
        retried = await paginator.collect()
    assert failed.is_failure
    assert failed.exception is not None
    assert failed.exception.details["page"] == 3
    assert retried.is_success
    assert retried.value == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("strategy", "resume"),
    [
        (PageNumber(), PageRequest("/numbered")),
        (PageNumber(), PageRequest("/numbered", {"page": "two"})),
        (Offset(limit=2), PageRequest("/numbered", {"limit": 2})),
    ],
)
async def test_resume_from_without_the_parameter_is_a_typed_error(
    server: _Server, strategy: Any, resume: PageRequest
) -> None:
    """Before: a KeyError/ValueError traceback, even out of collect(). After: a failed
    result with INVALID_REQUEST naming the parameter."""
    async with _client(server) as client:
        paginator = client.paginate("/numbered", strategy=strategy, resume_from=resume)
        result = await paginator.collect()
    assert result.is_failure
    assert result.exception is not None
    assert result.exception.code is ErrorCode.INVALID_REQUEST
    assert "query parameter" in result.exception.message


@pytest.mark.parametrize(
    "factory",
    [
        lambda: PageNumber(start="1"),  # type: ignore[arg-type]
        lambda: PageNumber(size_param="n", size=2.5),  # type: ignore[arg-type]
        lambda: Offset(limit=1.5),  # type: ignore[arg-type]
        lambda: Offset(start=True),
    ],
)
def test_page_strategy_numbers_must_be_ints(factory: Any) -> None:
    """Before: accepted, then a ValueError/TypeError traceback at page 2. After: refused."""
    with pytest.raises(ValueError, match=r"\(an int\)"):
        factory()
