"""State "fresh": a stored response within its freshness lifetime answers without a request."""

from __future__ import annotations

from flext_api import ErrorCode, FlextApiClient, HttpRequest, HttpResponse
from flext_api.cache import CachePlugin
from flext_api.testing import FakeClock
from flext_api.transports import MockTransport

from ._support import URL, fixed, get, http_date, new_plugin


async def test_max_age_is_honoured() -> None:
    """Within max-age the second request never reaches the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    first = await get(plugin, origin)
    clock.advance(30)
    second = await get(plugin, origin)
    assert origin.hits == 1
    assert not first.value.from_cache
    response = second.value
    assert response.from_cache
    assert response.cache_status == "hit"
    assert response.content == b"body"
    assert response.headers["age"] == "30"


async def test_expires_gives_freshness() -> None:
    """Expires - Date is the lifetime when there is no max-age."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Expires", http_date(clock, 100))])
    await get(plugin, origin)
    clock.advance(99)
    assert (await get(plugin, origin)).value.from_cache
    clock.advance(2)
    assert not (await get(plugin, origin)).value.from_cache


async def test_heuristic_freshness_from_last_modified() -> None:
    """Without explicit freshness, 10 % of the Last-Modified age is the lifetime."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Last-Modified", http_date(clock, -1000))])
    await get(plugin, origin)
    clock.advance(99)
    assert (await get(plugin, origin)).value.cache_status == "hit"
    clock.advance(2)
    second = await get(plugin, origin)
    assert origin.requests[-1].headers["if-modified-since"] == http_date(clock, -1101)
    assert second.value.cache_status == "miss"  # a full 200 answered the revalidation


async def test_heuristic_freshness_is_capped() -> None:
    """The heuristic lifetime never exceeds heuristic_max."""
    clock = FakeClock()
    plugin = new_plugin(clock, heuristic_max=50)
    origin = fixed(clock, [("Last-Modified", http_date(clock, -(10**7)))])
    await get(plugin, origin)
    clock.advance(51)
    await get(plugin, origin)
    assert origin.hits == 2


async def test_shared_cache_prefers_s_maxage() -> None:
    """A shared cache uses s-maxage over max-age; a private one ignores s-maxage."""
    clock = FakeClock()
    headers = [("Cache-Control", "max-age=10, s-maxage=100")]
    shared, private = new_plugin(clock, shared=True), new_plugin(clock)
    shared_origin, private_origin = fixed(clock, headers), fixed(clock, headers)
    await get(shared, shared_origin)
    await get(private, private_origin)
    clock.advance(50)
    assert (await get(shared, shared_origin)).value.from_cache
    assert not (await get(private, private_origin)).value.from_cache


async def test_request_max_age_zero_skips_the_stored_response() -> None:
    """Cache-Control: max-age=0 on the request makes a fresh stored response unusable."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)
    clock.advance(1)
    result = await get(plugin, origin, headers=[("Cache-Control", "max-age=0")])
    assert origin.hits == 2
    assert not result.value.from_cache


async def test_request_min_fresh() -> None:
    """min-fresh=N needs at least N seconds of freshness left."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)
    clock.advance(50)
    await get(plugin, origin, headers=[("Cache-Control", "min-fresh=20")])
    assert origin.hits == 2


async def test_head_is_cached_apart_and_has_no_body() -> None:
    """HEAD responses are stored under their own key and served without a body."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")], body=b"")
    await get(plugin, origin, method="HEAD")
    result = await get(plugin, origin, method="HEAD")
    assert result.value.from_cache
    assert result.value.content == b""
    await get(plugin, origin)  # GET is a different key
    assert origin.hits == 2


async def test_stored_404_answers_as_the_same_failure() -> None:
    """A cached 404 comes back as an HTTP_STATUS failure with the cached response attached."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")], status=404, body=b"nope")
    first = await get(plugin, origin)
    second = await get(plugin, origin)
    assert first.error_code is ErrorCode.HTTP_STATUS
    assert second.error_code is ErrorCode.HTTP_STATUS
    assert origin.hits == 1
    error = second.exception
    assert error is not None
    assert error.response is not None
    assert error.response.from_cache
    assert error.response.content == b"nope"


def flagged(fail: bool | None) -> HttpRequest:
    """A GET of URL with ``fail_on_http_error`` set as a per-request option (None: unset)."""
    return HttpRequest("GET", URL, extensions={} if fail is None else {"fail_on_http_error": fail})


async def test_stored_404_follows_the_current_requests_fail_on_http_error() -> None:
    """A 404 stored by a request that let 4xx through is a failure for one that does not,
    and the other way round: the stored response is the same, the verdict is the caller's."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    lenient = fixed(clock, [("Cache-Control", "max-age=60")], status=404, body=b"nope")
    assert (await plugin.handle(flagged(False), lenient)).is_success  # stores it
    strict = await plugin.handle(flagged(None), lenient)
    assert strict.error_code is ErrorCode.HTTP_STATUS
    error = strict.exception
    assert error is not None and error.response is not None
    assert (error.response.cache_status, error.response.content) == ("hit", b"nope")

    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")], status=404, body=b"nope")
    assert (await plugin.handle(flagged(True), origin)).is_failure  # stores it
    let_through = await plugin.handle(flagged(False), origin)
    assert let_through.is_success
    assert (let_through.value.status_code, let_through.value.cache_status) == (404, "hit")
    assert origin.hits == 1 and lenient.hits == 1


async def test_stored_404_follows_the_clients_fail_on_http_error() -> None:
    """With fail_on_http_error=False on the client, a cached 404 is a success like a fresh one."""
    calls: list[str] = []

    def origin(request: HttpRequest) -> HttpResponse:
        calls.append(request.url)
        return HttpResponse(404, headers=[("Cache-Control", "max-age=60")], content=b"nope")

    async with FlextApiClient(
        "https://api.test",
        transport=MockTransport(origin),
        plugins=[CachePlugin()],
        fail_on_http_error=False,
        default_plugins=False,
    ) as client:
        first = await client.get("/items")
        second = await client.get("/items")
        strict = await client.get("/items", fail_on_http_error=True)
    assert (first.value.cache_status, second.value.cache_status) == ("miss", "hit")
    assert second.value.status_code == 404
    assert strict.error_code is ErrorCode.HTTP_STATUS
    assert len(calls) == 1


async def test_url_case_of_host_and_fragment_do_not_matter() -> None:
    """Scheme/host case and the fragment do not change the cache key."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin, url=URL)
    result = await get(plugin, origin, url="HTTPS://API.TEST/items#frag")
    assert result.value.from_cache
