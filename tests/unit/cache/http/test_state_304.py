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
