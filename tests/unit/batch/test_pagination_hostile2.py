"""Pagination a server paged forever, and request options taken without a word: a
page-number server that ignores the parameter but stamps each body differently, and
``request_options`` that clash with the paginator's own arguments."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from flext_api import ErrorCode, HttpRequest, HttpResponse
from flext_api.client.pagination._paginate import PaginationError, Paginator
from flext_api.client.pagination._strategies import NextUrl, Offset, PageNumber

from ._helpers import make_client


def _page_of(request: HttpRequest) -> int:
    query = parse_qs(urlsplit(request.url).query)
    return int(query.get("page", query.get("offset", ["1"]))[-1])


def _json(payload: Any) -> HttpResponse:
    return HttpResponse(
        200, content=orjson.dumps(payload), headers={"Content-Type": "application/json"}
    )


async def _walk(paginator: Paginator, into: list[list[Any]]) -> None:
    """Iterate, keeping each page's items; fail an endless walk instead of hanging."""
    async for page in paginator:
        into.append(page.items)
        assert page.number < 50, "unbounded pagination"


def echoing(request: HttpRequest) -> HttpResponse:
    """Ignores the page asked for, but echoes it: every body differs, the items do not."""
    return _json({"page": _page_of(request), "items": [{"id": 1}, {"id": 2}]})


@pytest.mark.parametrize("strategy", [PageNumber(), Offset(limit=2)])
async def test_a_server_ignoring_the_parameter_but_echoing_it_is_a_loop(strategy: Any) -> None:
    """Before: the bodies differed byte for byte, so page 1's records came back forever.
    After: the second page, with the first page's items, raises repeated_page."""
    pages: list[list[Any]] = []
    async with make_client(echoing) as client:
        with pytest.raises(PaginationError, match="same content") as info:
            await _walk(client.paginate("/items", strategy=strategy), pages)
    assert pages == [[{"id": 1}, {"id": 2}]]
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert info.value.details["reason"] == "repeated_page"
    assert info.value.details["page"] == 2


def clamping(request: HttpRequest) -> HttpResponse:
    """Two pages, then the last page again for any page past it (a clamping server),
    stamped with the page asked for."""
    page = _page_of(request)
    items = [[1, 2], [3]][min(page, 2) - 1]
    return _json({"requested": page, "items": items})


async def test_a_clamping_server_stops_after_its_last_page() -> None:
    """Before: page 2 came back for page 3, 4, ... forever. After: pages 1 and 2 are
    yielded, then repeated_page; collect() returns that as a failure and keeps them."""
    pages: list[list[Any]] = []
    async with make_client(clamping) as client:
        with pytest.raises(PaginationError, match="same content"):
            await _walk(client.paginate("/items", strategy=PageNumber()), pages)
        paginator = client.paginate("/items", strategy=PageNumber())
        result = await paginator.collect()
    assert pages == [[1, 2], [3]]
    assert result.exception is not None
    assert result.exception.details["reason"] == "repeated_page"
    assert paginator.pages_fetched == 2


def typed(request: HttpRequest) -> HttpResponse:
    """Pages whose items are equal in Python (1 == 1.0 == True) but not as JSON."""
    bodies = [b'{"items": [1]}', b'{"items": [1.0]}', b'{"items": [true]}', b'{"items": []}']
    return HttpResponse(200, content=bodies[_page_of(request) - 1])


async def test_items_equal_only_in_python_are_not_a_repeat() -> None:
    """Items are compared as JSON: [1], [1.0] and [true] are three pages."""
    async with make_client(typed) as client:
        result = await client.paginate("/items", strategy=PageNumber()).collect()
    assert result.value == [1, 1.0, True]
    assert [type(v) for v in result.value] == [int, float, bool]


def deep(request: HttpRequest) -> HttpResponse:
    """Items nested deeper than orjson writes; the bodies differ from page to page."""
    page = _page_of(request)
    if page > 2:
        return _json({"items": []})
    nested = b"[" * 300 + str(page).encode() + b"]" * 300
    return HttpResponse(200, content=b'{"items": [' + nested + b"]}")


async def test_items_nested_too_deep_to_write_are_compared_by_body() -> None:
    """No TypeError from the comparison: two different deep pages are two pages."""
    async with make_client(deep) as client:
        result = await client.paginate("/items", strategy=PageNumber()).collect()
    assert result.is_success
    assert len(result.value) == 2


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"params": {"q": "x"}}, TypeError, "pass params= to paginate() itself"),
        ({"headers": {"X-A": "1"}}, TypeError, "pass headers= to paginate() itself"),
        ({"method": "POST"}, TypeError, "request_options does not take method"),
        ({"timout": 5}, TypeError, "request_options does not take timout"),
        ({"idempotency_key": "k"}, ValueError, "idempotency_key=True"),
    ],
)
async def test_request_options_are_checked_when_the_paginator_is_made(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Before: params= here raised "got multiple values for keyword argument" out of
    collect() at the first page (and a str idempotency_key was sent with every page).
    After: a TypeError/ValueError naming the option, when paginate() is called."""
    async with make_client(echoing) as client:
        with pytest.raises(error, match=re.escape(message)):
            client.paginate("/items", request_options=options)


async def test_the_options_a_page_may_take_are_sent() -> None:
    """Options the paginator does not set itself (timeout, fail_on_http_error) pass."""
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return _json({"items": [1]} if _page_of(request) == 1 else {"items": []})

    async with make_client(handler) as client:
        result = await client.paginate(
            "/items",
            strategy=PageNumber(),
            request_options={"timeout": 5.0, "fail_on_http_error": False},
        ).collect()
    assert result.value == [1]
    assert len(seen) == 2


@pytest.mark.parametrize("target", ["mailto:ops@example.com", "javascript:next()", "data:,x"])
async def test_a_next_url_that_is_no_http_url_is_a_decode_error(target: str) -> None:
    """Before: "mailto:x" was fetched as the path /mailto:x of the base URL. After:
    DECODE_ERROR, nothing more sent."""
    seen: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        return _json({"items": [1], "next": target})

    async with make_client(handler) as client:
        result = await client.paginate("/p", strategy=NextUrl()).collect()
    assert result.exception is not None
    assert result.exception.code is ErrorCode.DECODE_ERROR
    assert "is not an http(s) URL" in result.exception.message
    assert seen == ["http://svc/p"]
