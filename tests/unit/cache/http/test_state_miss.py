"""State "miss": nothing usable is stored, the request is forwarded and its answer maybe stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api.testing import FakeClock

from ._support import URL, fixed, get, new_plugin


async def test_first_request_is_forwarded_then_stored() -> None:
    """A miss reaches the origin and the storable answer serves the next request."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    first = await get(plugin, origin)
    assert origin.hits == 1
    assert first.value.from_cache is False
    assert first.value.cache_status == "miss"
    assert (await get(plugin, origin)).value.from_cache


async def test_uncacheable_statuses_are_not_stored() -> None:
    """A partial 206 is never stored, even with explicit freshness."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")], status=206)
    await get(plugin, origin)
    await get(plugin, origin)
    assert origin.hits == 2


async def test_other_statuses_are_stored_only_with_explicit_freshness() -> None:
    """A 302 outside the heuristic set is stored with max-age (RFC 9111 §3), not without."""
    clock = FakeClock()
    fresh = fixed(clock, [("Cache-Control", "max-age=60")], status=302)
    plugin = new_plugin(clock)
    await get(plugin, fresh)
    await get(plugin, fresh)
    heuristic = fixed(clock, [("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")], status=302)
    other = new_plugin(clock)
    await get(other, heuristic)
    await get(other, heuristic)
    assert (fresh.hits, heuristic.hits) == (1, 2)


async def test_response_without_freshness_or_validator_is_not_stored() -> None:
    """A 200 with no max-age, Expires, Last-Modified or ETag is not worth storing."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock)
    await get(plugin, origin)
    await get(plugin, origin)
    assert origin.hits == 2
    assert (await plugin.cache.stats()).sets == 0


async def test_unsafe_methods_are_not_cached() -> None:
    """POST answers are forwarded, never stored or served from the cache."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin, method="POST")
    await get(plugin, origin, method="POST")
    assert origin.hits == 2


async def test_streamed_response_is_never_stored() -> None:
    """A response whose body was not read (a stream) is not stored."""
    clock = FakeClock()
    plugin = new_plugin(clock)

    calls: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data"

    async def streaming(request: HttpRequest) -> FlextResult[HttpResponse]:
        calls.append(1)
        response = HttpResponse(
            200, headers=[("Cache-Control", "max-age=60")], stream=chunks(), request=request
        )
        await response.aclose()
        return FlextResult.ok(response)

    await plugin.handle(HttpRequest("GET", URL), streaming)
    await plugin.handle(HttpRequest("GET", URL), streaming)
    assert len(calls) == 2


async def test_streaming_and_opted_out_requests_bypass_the_cache() -> None:
    """Streamed, cache=False, conditional and Range requests go straight through."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)  # stored
    bypassing = [
        HttpRequest("GET", URL, extensions={"stream": True}),
        HttpRequest("GET", URL, extensions={"cache": False}),
        HttpRequest("GET", URL, headers={"If-None-Match": '"x"'}),
        HttpRequest("GET", URL, headers={"Range": "bytes=0-1"}),
    ]
    for request in bypassing:
        result = await plugin.handle(request, origin)
        assert not result.value.from_cache
    assert origin.hits == 1 + len(bypassing)


async def test_only_if_cached_miss_is_a_504() -> None:
    """only-if-cached with nothing stored answers 504 without contacting the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    result = await get(plugin, origin, headers=[("Cache-Control", "only-if-cached")])
    assert origin.hits == 0
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None
    assert result.exception.response is not None
    assert result.exception.response.status_code == 504


async def test_only_if_cached_miss_is_a_504_response_when_4xx_5xx_are_let_through() -> None:
    """With fail_on_http_error off, the 504 comes back as a response, as the origin's would."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    plugin.use_fail_on_http_error(False)  # what a FlextApiClient(fail_on_http_error=False) does
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    result = await get(plugin, origin, headers=[("Cache-Control", "only-if-cached")])
    assert origin.hits == 0
    assert result.is_success
    assert (result.value.status_code, result.value.from_cache) == (504, True)


async def test_only_if_cached_with_stale_entry_is_a_504() -> None:
    """only-if-cached does not revalidate: a stale stored response gives 504 too."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=1"), ("ETag", '"e"')])
    await get(plugin, origin)
    clock.advance(5)
    result = await get(plugin, origin, headers=[("Cache-Control", "only-if-cached")])
    assert origin.hits == 1
    assert result.exception is not None
    assert result.exception.details["reason"] == "only-if-cached and no stored response"


async def test_only_if_cached_hit_is_served() -> None:
    """only-if-cached with a fresh stored response is a normal hit."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)
    result = await get(plugin, origin, headers=[("Cache-Control", "only-if-cached")])
    assert result.value.cache_status == "hit"


async def test_only_if_cached_504_is_a_miss() -> None:
    """The 504 of only-if-cached (made by the cache, so from_cache) says cache_status "miss"."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    plugin.use_fail_on_http_error(False)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    result = await get(plugin, origin, headers=[("Cache-Control", "only-if-cached")])
    assert (result.value.from_cache, result.value.cache_status) == (True, "miss")
