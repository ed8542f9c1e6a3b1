"""State "304": a Not Modified answer freshens the stored response, which is returned."""

from __future__ import annotations

from flext_api import HttpRequest
from flext_api.testing import FakeClock

from ._support import Origin, answer, get, http_date, new_plugin


def validating_origin(clock: FakeClock, etag: str = '"v1"', max_age: int = 10) -> Origin:
    """200 with a body and an ETag; 304 (with new headers) when If-None-Match matches."""

    def respond(request: HttpRequest):  # type: ignore[no-untyped-def]
        headers = [
            ("Date", http_date(clock)),
            ("Cache-Control", f"max-age={max_age}"),
            ("ETag", etag),
        ]
        if request.headers.get("if-none-match") == etag:
            return answer(
                request, 304, [*headers, ("X-Refreshed", "yes"), ("Content-Length", "0")], b""
            )
        return answer(
            request, 200, [*headers, ("Content-Length", "4"), ("X-Original", "1")], b"body"
        )

    return Origin(respond)


async def test_304_returns_the_stored_body_as_revalidated() -> None:
    """On 304 the caller gets the stored body with cache_status "revalidated"."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = validating_origin(clock)
    await get(plugin, origin)
    clock.advance(11)
    result = await get(plugin, origin)
    response = result.value
    assert response.status_code == 200
    assert response.content == b"body"
    assert response.from_cache
    assert response.cache_status == "revalidated"


async def test_304_headers_are_merged_except_content_length() -> None:
    """Fields of the 304 replace stored ones; Content-Length and untouched fields stay."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = validating_origin(clock)
    await get(plugin, origin)
    clock.advance(11)
    headers = (await get(plugin, origin)).value.headers
    assert headers["x-refreshed"] == "yes"
    assert headers["x-original"] == "1"
    assert headers["content-length"] == "4"
    assert headers["date"] == http_date(clock)


async def test_304_renews_freshness() -> None:
    """After a 304 the response is fresh again for its max-age."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = validating_origin(clock)
    await get(plugin, origin)
    clock.advance(11)
    await get(plugin, origin)
    clock.advance(5)
    result = await get(plugin, origin)
    assert result.value.cache_status == "hit"
    assert origin.hits == 2


async def test_full_response_on_revalidation_replaces_the_stored_one() -> None:
    """When the validator no longer matches, the new 200 is returned and stored."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await get(plugin, validating_origin(clock, etag='"v1"'))
    clock.advance(11)
    changed = validating_origin(clock, etag='"v2"')
    result = await get(plugin, changed)
    assert not result.value.from_cache
    assert changed.requests[0].headers["if-none-match"] == '"v1"'
    clock.advance(1)
    assert (await get(plugin, changed)).value.cache_status == "hit"
    assert changed.hits == 1


async def test_304_without_date_renews_freshness() -> None:
    """A 304 with no Date is dated when received (RFC 9110 §6.6.1): fresh again, age 0."""
    clock = FakeClock()
    plugin = new_plugin(clock)

    def respond(request: HttpRequest):  # type: ignore[no-untyped-def]
        if request.headers.get("if-none-match") == '"v1"':
            return answer(request, 304, [], b"")
        headers = [("Date", http_date(clock)), ("Cache-Control", "max-age=10"), ("ETag", '"v1"')]
        return answer(request, 200, headers, b"body")

    origin = Origin(respond)
    await get(plugin, origin)
    clock.advance(11)
    revalidated = (await get(plugin, origin)).value
    assert revalidated.headers["age"] == "0"
    assert revalidated.headers["date"] == http_date(clock)
    clock.advance(5)
    result = await get(plugin, origin)
    assert result.value.cache_status == "hit"
    assert origin.hits == 2


def changed_origin(clock: FakeClock, not_modified: list[tuple[str, str]]) -> Origin:
    """Stored: 200 "old" with ETag "v1" and a Last-Modified. A conditional request gets a
    304 with ``not_modified``'s fields; an unconditional one the new 200 "new", ETag "v2"."""
    versions = iter([(b"old", '"v1"'), (b"new", '"v2"')])

    def respond(request: HttpRequest):  # type: ignore[no-untyped-def]
        date = ("Date", http_date(clock))
        if "if-none-match" in request.headers:
            return answer(request, 304, [date, ("X-Refreshed", "yes"), *not_modified], b"")
        body, etag = next(versions)
        headers = [date, ("Cache-Control", "max-age=10"), ("ETag", etag),
                   ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")]  # fmt: skip
        return answer(request, 200, headers, body)

    return Origin(respond)


async def test_304_with_another_strong_etag_is_asked_again_unconditionally() -> None:
    """A 304 whose strong ETag is not the stored one's freshens nothing (RFC 9111 §4.3.4):
    the request goes once more without validators and its full answer is returned."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = changed_origin(clock, [("ETag", '"v2"')])
    await get(plugin, origin)
    clock.advance(11)
    response = (await get(plugin, origin)).value
    assert (response.content, response.from_cache, response.cache_status) == (b"new", False, "miss")
    assert "x-refreshed" not in response.headers
    sent = [r.headers.get("if-none-match") for r in origin.requests]
    assert sent == [None, '"v1"', None]
    clock.advance(1)
    again = (await get(plugin, origin)).value
    assert (again.content, again.cache_status, origin.hits) == (b"new", "hit", 3)


async def test_304_with_another_last_modified_is_asked_again_unconditionally() -> None:
    """Without an ETag, a 304 whose Last-Modified differs from the stored one freshens nothing."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = changed_origin(clock, [("Last-Modified", "Thu, 22 Oct 2015 07:28:00 GMT")])
    await get(plugin, origin)
    clock.advance(11)
    response = (await get(plugin, origin)).value
    assert (response.content, response.cache_status, origin.hits) == (b"new", "miss", 3)


async def test_304_with_the_same_last_modified_in_another_format_freshens() -> None:
    """Last-Modified dates are compared as dates: an RFC 850 form of the same instant matches."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = changed_origin(clock, [("Last-Modified", "Wednesday, 21-Oct-15 07:28:00 GMT")])
    await get(plugin, origin)
    clock.advance(11)
    response = (await get(plugin, origin)).value
    assert (response.content, response.cache_status, origin.hits) == (b"old", "revalidated", 2)


async def test_a_304_to_the_unconditional_request_too_comes_back_as_it_is() -> None:
    """An origin that answers 304 to everything gets no third request: its 304 is returned,
    as a miss, and nothing is freshened or kept."""
    clock = FakeClock()
    plugin = new_plugin(clock)

    def respond(request: HttpRequest):  # type: ignore[no-untyped-def]
        headers = [("Date", http_date(clock)), ("Cache-Control", "max-age=10")]
        if origin.hits == 1:
            return answer(request, 200, [*headers, ("ETag", '"v1"')], b"old")
        return answer(request, 304, [*headers, ("ETag", '"v2"')], b"")

    origin = Origin(respond)
    await get(plugin, origin)
    clock.advance(11)
    response = (await get(plugin, origin)).value
    assert (response.status_code, response.cache_status, origin.hits) == (304, "miss", 3)
    assert "if-none-match" not in origin.requests[2].headers
    await get(plugin, origin)
    assert "if-none-match" not in origin.requests[3].headers  # the entry was dropped


async def test_full_response_on_revalidation_is_a_miss() -> None:
    """A revalidation answered with a full 200 (the validator no longer matched) says "miss"."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await get(plugin, validating_origin(clock, etag='"v1"'))
    clock.advance(11)
    response = (await get(plugin, validating_origin(clock, etag='"v2"'))).value
    assert (response.from_cache, response.cache_status) == (False, "miss")
