"""Paginator and the strategies, over MockTransport: end, loops, failures, resume."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest, HttpResponse
from flext_api._errors import DecodeError
from flext_api.client import FlextApiSyncClient
from flext_api.client.pagination._paginate import Page, PaginationError, Paginator, paginate_sync
from flext_api.client.pagination._strategies import (
    Cursor,
    LinkHeader,
    NextUrl,
    Offset,
    PageNumber,
    PageRequest,
    lookup,
)
from flext_api.transports import MockTransport

from ._helpers import make_client

RECORDS = [{"id": i} for i in range(7)]


def _query(request: HttpRequest) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        status,
        content=orjson.dumps(payload),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def numbered(request: HttpRequest) -> HttpResponse:
    """?page=N&per_page=S over RECORDS, as {"items": [...]}."""
    q = _query(request)
    page, size = int(q["page"]), int(q.get("per_page", 3))
    return _json({"items": RECORDS[(page - 1) * size : page * size]})


async def _pages(paginator: Paginator) -> list[list[Any]]:
    return [page.items async for page in paginator]


async def _record(paginator: Paginator, into: list[Any]) -> None:
    """Iterate, keeping each page's items in ``into`` (kept when iteration raises)."""
    async for page in paginator:
        into.append(page.items)


def _ids(pages: list[list[Any]]) -> list[list[int]]:
    return [[record["id"] for record in items] for items in pages]


async def test_page_number_until_an_empty_page() -> None:
    """Pages 1, 2, 3 are yielded; the empty page 4 ends the iteration, unyielded."""
    async with make_client(numbered) as client:
        paginator = client.paginate(
            "/items", strategy=PageNumber(size_param="per_page", size=3), params={"q": "x"}
        )
        assert _ids(await _pages(paginator)) == [[0, 1, 2], [3, 4, 5], [6]]
        sent = [_query(r) for r in client.transport.requests]  # type: ignore[attr-defined]
    assert sent[0] == {"q": "x", "page": "1", "per_page": "3"}
    assert [q["page"] for q in sent] == ["1", "2", "3", "4"]
    assert paginator.pages_fetched == 3 and not paginator.truncated
    assert repr(paginator) == "<Paginator PageNumber [3 pages, done]>"


async def test_offset_grows_by_the_items_received() -> None:
    """Offset advances by the number of records of each page (the server may send fewer)."""

    def handler(request: HttpRequest) -> HttpResponse:
        q = _query(request)
        offset = int(q["offset"])
        return _json({"data": RECORDS[offset : offset + min(2, int(q["limit"]))]})

    async with make_client(handler) as client:
        items = [r["id"] async for r in client.paginate("/x", strategy=Offset(limit=5)).items()]
        offsets = [_query(r)["offset"] for r in client.transport.requests]  # type: ignore[attr-defined]
    assert items == list(range(7))
    assert offsets == ["0", "2", "4", "6", "7"]


async def test_cursor_from_a_nested_path_until_null() -> None:
    """The cursor at next_path is sent back; a null cursor ends the iteration."""

    def handler(request: HttpRequest) -> HttpResponse:
        start = int(_query(request).get("after", "0"))
        following = start + 3 if start + 3 < len(RECORDS) else None
        return _json({"results": RECORDS[start : start + 3], "meta": {"next": following}})

    async with make_client(handler) as client:
        pages = await _pages(
            client.paginate("/x", strategy=Cursor(param="after", next_path="meta.next"))
        )
    assert _ids(pages) == [[0, 1, 2], [3, 4, 5], [6]]


def _next_url_api(next_of: dict[str, str | None]) -> Any:
    def handler(request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.url).path
        return _json({"items": [{"id": path}], "next": next_of[path]})

    return handler


async def test_next_url_relative_and_absolute() -> None:
    """Relative next URLs resolve against the page's URL; same-origin absolute ones are followed."""
    handler = _next_url_api(
        {"/v1/a": "b", "/v1/b": "/v1/c", "/v1/c": "http://svc/v1/d", "/v1/d": None}
    )
    async with make_client(handler) as client:
        pages = await _pages(client.paginate("/v1/a", strategy=NextUrl()))
    assert [items[0]["id"] for items in pages] == ["/v1/a", "/v1/b", "/v1/c", "/v1/d"]


async def test_next_url_to_another_origin_is_refused() -> None:
    """A next link to another host raises INVALID_REQUEST unless allowed."""
    handler = _next_url_api({"/a": "http://evil.example/b", "/b": None})
    async with make_client(handler) as client:
        seen: list[Any] = []
        with pytest.raises(PaginationError, match="leaves the origin") as info:
            await _record(client.paginate("/a", strategy=NextUrl()), seen)
        assert len(seen) == 1
        assert info.value.code is ErrorCode.INVALID_REQUEST
        assert info.value.details["reason"] == "cross_origin"
        pages = await _pages(client.paginate("/a", strategy=NextUrl(), allow_cross_origin=True))
    assert len(pages) == 2


@pytest.mark.parametrize(
    "target", ["http://svc:80/b", "http://svc:080/b", "http://SVC./b", "HTTP://svc/b"]
)
async def test_next_url_spelling_the_same_origin_differently_is_followed(target: str) -> None:
    """A next link naming the page's origin with its default port, a trailing dot or
    other letter case stays on the origin: it is followed, not refused as cross-origin."""
    handler = _next_url_api({"/a": target, "/b": None})
    async with make_client(handler) as client:
        pages = await _pages(client.paginate("/a", strategy=NextUrl()))
    assert [items[0]["id"] for items in pages] == ["/a", "/b"]


@pytest.mark.parametrize("target", ["http://svc:81/b", "https://svc/b", "http://user@svc/b"])
async def test_next_url_to_another_port_scheme_or_userinfo_is_refused(target: str) -> None:
    """Another port or scheme is another origin; credentials added by the server are
    refused too (they would be sent with the next request)."""
    handler = _next_url_api({"/a": target, "/b": None})
    async with make_client(handler) as client:
        with pytest.raises(PaginationError) as info:
            await _pages(client.paginate("/a", strategy=NextUrl()))
    assert info.value.details["reason"] == "cross_origin"


async def test_link_header_is_the_default_strategy() -> None:
    """rel="next" links are followed (relative to the page); no next link ends it."""

    def handler(request: HttpRequest) -> HttpResponse:
        page = int(_query(request).get("page", "1"))
        links = ['<items?page=9>; rel="last"']
        if page < 3:
            links.append(f'<items?page={page + 1}>; rel="next"; title="a, b"')
        return _json([{"id": page}], headers={"Link": ", ".join(links)})

    async with make_client(handler) as client:
        pages = await _pages(client.paginate("/api/items"))
        urls = [r.url for r in client.transport.requests]  # type: ignore[attr-defined]
    assert _ids(pages) == [[1], [2], [3]]
    assert urls[1] == "http://svc/api/items?page=2"


async def test_loop_is_detected_after_the_pages_already_yielded() -> None:
    """A next link back to a fetched page raises PROTOCOL_ERROR (reason "loop")."""
    handler = _next_url_api({"/a": "/b", "/b": "/c", "/c": "/b"})
    seen: list[Any] = []
    async with make_client(handler) as client:
        with pytest.raises(PaginationError, match="pagination loop") as info:
            await _record(client.paginate("/a", strategy=NextUrl()), seen)
    assert [items[0]["id"] for items in seen] == ["/a", "/b", "/c"]
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert info.value.details == {"reason": "loop", "page": 4, "url": "http://svc/b"}


async def test_link_back_to_the_first_page_is_a_loop_whatever_its_form() -> None:
    """An absolute link to the first page, fetched by a relative path, is still a repeat."""
    handler = _next_url_api({"/a": "/b", "/b": "http://svc/a"})
    async with make_client(handler) as client:
        with pytest.raises(PaginationError) as info:
            await _pages(client.paginate("/a", strategy=NextUrl()))
    assert info.value.details["url"] == "http://svc/a"
    assert info.value.details["page"] == 3


async def test_failed_page_raises_after_earlier_pages_and_resumes() -> None:
    """Page 2 failing raises its error after page 1; iterating again resumes at page 2."""
    broken = True

    def handler(request: HttpRequest) -> HttpResponse:
        if _query(request)["page"] == "2" and broken:
            return _json({"error": "down"}, status=503)
        return numbered(request)

    async with make_client(handler) as client:
        paginator = client.paginate("/x", strategy=PageNumber(size_param="per_page", size=3))
        seen: list[list[Any]] = []
        with pytest.raises(FlextApiError) as info:
            await _record(paginator, seen)
        assert _ids(seen) == [[0, 1, 2]]
        assert info.value.code is ErrorCode.HTTP_STATUS
        assert info.value.details["page"] == 2
        broken = False
        assert _ids(await _pages(paginator)) == [[3, 4, 5], [6]]


async def test_max_pages_stops_and_says_truncated() -> None:
    """max_pages stops early; truncated tells a next page existed."""
    async with make_client(numbered) as client:
        paginator = client.paginate("/x", strategy=PageNumber(), max_pages=2)
        assert len(await _pages(paginator)) == 2
    assert paginator.truncated
    assert "truncated" in repr(paginator)


async def test_items_path_and_its_errors() -> None:
    """items_path picks the records; missing or not a list raises DECODE_ERROR."""

    def handler(request: HttpRequest) -> HttpResponse:
        return _json({"wrap": {"rows": [1, 2]}, "meta": {"n": 1}, "next": None})

    async with make_client(handler) as client:
        pages = await _pages(client.paginate("/x", strategy=NextUrl(), items_path="wrap.rows"))
        assert pages == [[1, 2]]
        with pytest.raises(DecodeError, match="'nope' are missing, not a list"):
            await _pages(client.paginate("/x", strategy=NextUrl(), items_path="nope"))
        with pytest.raises(DecodeError, match="'meta' are a dict, not a list"):
            await _pages(client.paginate("/x", strategy=NextUrl(), items_path="meta"))


@pytest.mark.parametrize(
    ("body", "items"),
    [([1, 2], [1, 2]), ({"data": [3]}, [3]), ({"results": [4], "items": "no"}, [4])],
)
async def test_items_found_without_items_path(body: Any, items: list[Any]) -> None:
    """A list body, or the first list under items/data/results, is the page's records."""
    async with make_client(lambda r: _json(body)) as client:
        assert await _pages(client.paginate("/x", strategy=NextUrl())) == [items]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"rows": []}', "cannot find the items"),
        (b"", "the body is empty"),
        (b"<html>", "not valid JSON"),
    ],
)
async def test_unusable_bodies_raise_decode_error(content: bytes, message: str) -> None:
    """A body without recognizable items, an empty one or non-JSON raises DECODE_ERROR."""
    async with make_client(lambda r: HttpResponse(200, content=content)) as client:
        with pytest.raises(DecodeError, match=message) as info:
            await _pages(client.paginate("/x"))
    assert info.value.details["page"] == 1


async def test_collect_returns_a_result() -> None:
    """collect() gives every record as a success, or the failure as a failed result."""
    async with make_client(numbered) as client:
        ok = await client.paginate("/x", strategy=PageNumber()).collect()
        failed = await client.paginate("/x", strategy=PageNumber(), items_path="nope").collect()
    assert ok.value == RECORDS
    assert failed.error_code is ErrorCode.DECODE_ERROR


async def test_next_request_can_resume_in_a_new_paginator() -> None:
    """next_request saved after some pages starts a new paginator where the old one was."""
    async with make_client(numbered) as client:
        first = client.paginate("/x", strategy=PageNumber(), max_pages=1)
        await _pages(first)
        saved = first.next_request
        assert saved == PageRequest("/x", {"page": 2})
        rest = client.paginate("/x", strategy=PageNumber(), resume_from=saved)
        assert _ids(await _pages(rest)) == [[3, 4, 5], [6]]
        assert rest.next_request is None


async def test_method_and_headers_are_sent_on_every_page() -> None:
    """method= and headers= apply to each page request."""
    async with make_client(numbered) as client:
        await _pages(
            client.paginate("/x", strategy=PageNumber(), method="POST", headers={"X-T": "1"})
        )
        sent = client.transport.requests  # type: ignore[attr-defined]
    assert {(r.method, r.headers["x-t"]) for r in sent} == {("POST", "1")}


async def test_cursor_and_next_url_of_the_wrong_type() -> None:
    """A cursor that is not a string/int, or a next URL that is not a string, is DECODE_ERROR."""
    async with make_client(lambda r: _json({"items": [1], "next_cursor": [1], "next": 5})) as c:
        with pytest.raises(DecodeError, match="must be a string or an integer"):
            await _pages(c.paginate("/x", strategy=Cursor()))
        with pytest.raises(DecodeError, match="must be a string, got int"):
            await _pages(c.paginate("/x", strategy=NextUrl()))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: PageNumber(param=""), "param must be a non-empty str"),
        (lambda: PageNumber(size=3), "both size_param and size"),
        (lambda: PageNumber(size_param="n", size=0), "size must be >= 1"),
        (lambda: Offset(limit=0), "limit must be >= 1"),
        (lambda: Offset(start=-1), "start must be >= 0"),
        (lambda: Offset(limit_param=""), "limit_param"),
        (lambda: Cursor(next_path=""), "next_path"),
        (lambda: NextUrl(path=""), "path"),
        (lambda: LinkHeader(rel=""), "rel"),
    ],
)
def test_strategy_arguments_are_checked(factory: Any, message: str) -> None:
    """Strategies refuse empty names and non-positive sizes."""
    with pytest.raises(ValueError, match=message):
        factory()


def test_page_number_and_offset_end_on_an_empty_page() -> None:
    """Used directly, the counting strategies give no next request after an empty page."""
    empty = Page(1, "http://svc/x", HttpResponse(200), {"items": []}, [])
    assert PageNumber().next(PageRequest("/x", {"page": 1}), empty) is None
    assert Offset().next(PageRequest("/x", {"offset": 0, "limit": 100}), empty) is None


def test_paginator_arguments_are_checked() -> None:
    """max_pages must be positive and items_path non-empty."""
    client = make_client()
    for bad in (0, "3", 2.5, True):
        with pytest.raises(ValueError, match="max_pages must be an int >= 1 or None"):
            client.paginate("/x", max_pages=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="items_path"):
        client.paginate("/x", items_path="")


def test_lookup_walks_mappings_and_list_indexes() -> None:
    """Dotted paths go through dict keys and list indexes."""
    data = {"a": [{"b": 1}]}
    assert lookup(data, "a.0.b") == 1
    assert lookup(data, "a.1.b") is not None  # the missing sentinel, not an error


def test_sync_paginator_pages_items_and_collect() -> None:
    """paginate_sync gives blocking iteration over pages and items, and collect()."""
    with FlextApiSyncClient(
        "http://svc", transport=MockTransport(numbered), default_plugins=False
    ) as client:
        pages = [page.number for page in paginate_sync(client, "/x", strategy=PageNumber())]
        items = list(paginate_sync(client, "/x", strategy=PageNumber()).items())
        collected = paginate_sync(client, "/x", strategy=PageNumber()).collect()
    assert pages == [1, 2, 3]
    assert items == RECORDS
    assert collected.value == RECORDS


def _next_page(link: str | None = None, body_next: str | None = None) -> Any:
    """A first page with one item whose next page is ``link`` (Link) or ``body_next``."""

    def handler(request: HttpRequest) -> HttpResponse:
        headers = {"Link": f'<{link}>; rel="next"'} if link is not None else None
        body: dict[str, Any] = {"items": [1]}
        if body_next is not None:
            body["next"] = body_next
        return _json(body, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("handler", "strategy", "message"),
    [
        (_next_page(body_next="http://[::1"), NextUrl(), "is not a valid URL"),
        (_next_page(body_next="/p2\r\nX-Evil: 1"), NextUrl(), "contains a control character"),
        (_next_page(body_next="/p2\t"), NextUrl(), "contains a control character"),
        (_next_page(link="http://[::1"), LinkHeader(), "is not a valid URL"),
    ],
)
async def test_malformed_next_links_fail_collect_without_raising(
    handler: Any, strategy: Any, message: str
) -> None:
    """A next URL that is no URL, or holds CR/LF, is a DECODE_ERROR result, never followed."""
    seen: list[str] = []

    def recording(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        return handler(request)  # type: ignore[no-any-return]

    async with make_client(recording) as client:
        result = await Paginator(client, "/p1", strategy=strategy).collect()
    assert result.is_failure
    assert result.exception is not None
    assert result.exception.code is ErrorCode.DECODE_ERROR
    assert message in result.exception.message
    assert seen == ["http://svc/p1"]


async def test_a_request_that_cannot_be_encoded_fails_collect_without_raising() -> None:
    """A page URL holding unencodable text is an INVALID_REQUEST result, nothing sent."""
    async with make_client() as client:
        paginator = Paginator(client, "/p1", resume_from=PageRequest("/p\udcff"))
        result = await paginator.collect()
    assert result.exception is not None
    assert result.exception.code is ErrorCode.INVALID_REQUEST
    assert result.exception.details["page"] == 1
