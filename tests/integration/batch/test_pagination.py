"""Pagination against the fault server: each strategy, a loop, a failing page, an origin."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ClientConfig, ErrorCode, FlextApiError, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.client.pagination._paginate import PaginationError, Paginator
from flext_api.client.pagination._strategies import Cursor, LinkHeader, NextUrl, Offset, PageNumber
from flext_api.testing import set_testing
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

ALL_IDS = list(range(25))


def _client(server: FaultServer) -> FlextApiClient:
    """The default pipeline (retries included), with backoff sleeps off."""
    return FlextApiClient(server.url, config=ClientConfig(retry=RetryConfig(max_retries=2)))


async def _numbers(paginator: Paginator, into: list[int]) -> None:
    """Iterate, keeping each page's number in ``into`` (kept when iteration raises)."""
    async for page in paginator:
        into.append(page.number)


async def _ids(paginator: Paginator) -> list[int]:
    return [item["id"] async for item in paginator.items()]


@pytest.fixture(autouse=True)
def _no_backoff() -> Any:
    with set_testing(True):
        yield


async def test_page_number(fault: FaultServer) -> None:
    """?page=N walks the collection; the empty page after the last ends it."""
    async with _client(fault) as client:
        paginator = client.paginate(
            "/pages/number", strategy=PageNumber(size_param="size", size=10)
        )
        assert await _ids(paginator) == ALL_IDS
    assert paginator.pages_fetched == 3
    assert fault.hits("/pages/number") == 4


async def test_offset_limit(fault: FaultServer) -> None:
    """offset/limit walks the collection."""
    async with _client(fault) as client:
        assert await _ids(client.paginate("/pages/offset", strategy=Offset(limit=7))) == ALL_IDS


async def test_cursor_in_the_body(fault: FaultServer) -> None:
    """The cursor at meta.next_cursor is followed until it is null."""
    async with _client(fault) as client:
        strategy = Cursor(param="cursor", next_path="meta.next_cursor")
        assert await _ids(client.paginate("/pages/cursor", strategy=strategy)) == ALL_IDS
    assert fault.hits("/pages/cursor") == 3


@pytest.mark.parametrize("style", ["root", "relative", "absolute"])
async def test_next_url_in_the_body(fault: FaultServer, style: str) -> None:
    """A next URL in the body, root-relative, path-relative or absolute, is followed."""
    async with _client(fault) as client:
        paginator = client.paginate(
            "/pages/next", strategy=NextUrl(path="next"), params={"style": style}
        )
        assert await _ids(paginator) == ALL_IDS


async def test_link_header(fault: FaultServer) -> None:
    """RFC 8288 Link headers (two fields, quoted commas) are followed to the end."""
    async with _client(fault) as client:
        pages = [page async for page in client.paginate("/pages/link", strategy=LinkHeader())]
    assert [len(page.items) for page in pages] == [10, 10, 5]
    assert [page.number for page in pages] == [1, 2, 3]


@pytest.mark.parametrize(
    ("path", "strategy"),
    [
        ("/pages/cursor", Cursor(next_path="meta.next_cursor")),
        ("/pages/next", NextUrl()),
        ("/pages/link", LinkHeader()),
    ],
)
async def test_loop_stops_with_a_clear_error(fault: FaultServer, path: str, strategy: Any) -> None:
    """A last page pointing back to page 2 raises PaginationError after 3 pages."""
    async with _client(fault) as client:
        numbers: list[int] = []
        with pytest.raises(PaginationError, match="pagination loop") as info:
            await _numbers(client.paginate(path, strategy=strategy, params={"loop": 1}), numbers)
    assert numbers == [1, 2, 3]
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert fault.hits(path) == 3


async def test_failing_page_ends_the_iteration_after_retries(fault: FaultServer) -> None:
    """Page 2 answering 503 is retried, then raises RETRIES_EXHAUSTED after page 1."""
    async with _client(fault) as client:
        numbers: list[int] = []
        paginator = client.paginate("/pages/number", strategy=PageNumber(), params={"fail": 2})
        with pytest.raises(FlextApiError) as info:
            await _numbers(paginator, numbers)
    assert numbers == [1]
    assert info.value.code is ErrorCode.RETRIES_EXHAUSTED
    assert info.value.details["page"] == 2
    assert info.value.details["attempts"] == 3
    assert fault.hits("/pages/number") == 1 + 3


async def test_next_link_to_another_origin_is_refused(fault: FaultServer) -> None:
    """A next URL on localhost (another origin than 127.0.0.1) is not followed."""
    async with _client(fault) as client:
        with pytest.raises(PaginationError, match="leaves the origin"):
            await _ids(
                client.paginate("/pages/next", strategy=NextUrl(), params={"style": "foreign"})
            )
    assert fault.hits("/pages/next") == 1


async def test_max_pages(fault: FaultServer) -> None:
    """max_pages=2 fetches two pages and reports the collection as truncated."""
    async with _client(fault) as client:
        paginator = client.paginate("/pages/link", max_pages=2)
        assert len(await _ids(paginator)) == 20
    assert paginator.truncated
    assert fault.hits("/pages/link") == 2


async def test_a_non_ascii_link_target_is_requested_octet_for_octet(fault: FaultServer) -> None:
    """A Link target with a UTF-8 ``café`` (header octets, read one character per octet)
    is requested as ``caf%C3%A9``; encoding each octet again as UTF-8 asked for
    ``caf%C3%83%C2%A9``, another resource."""
    targets: list[str] = []

    async def pages(req: Request, w: ResponseWriter) -> None:
        targets.append(req.target)
        headers = [("Content-Type", "application/json")]
        if len(targets) == 1:  # "caf" + the UTF-8 octets of é, sent as they are
            headers.append(("Link", '</utf8-pages/caf\u00c3\u00a9>; rel="next"'))
        await w.send(200, b"[1]", headers)

    route = fault.add_route(r"/utf8-pages.*", pages)
    try:
        async with FlextApiClient(fault.url) as client:
            found = [p async for p in client.paginate("/utf8-pages", strategy=LinkHeader())]
    finally:
        fault.remove_route(route)
    assert len(found) == 2
    assert targets == ["/utf8-pages", "/utf8-pages/caf%C3%A9"]
