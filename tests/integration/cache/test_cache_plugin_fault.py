"""CachePlugin in a real FlextApiClient against the fault server (RFC 9111 end to end)."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode
from flext_api.cache import CachePlugin, FlextApiCache
from flext_api.client import FlextApiClient
from flext_api.testing import set_testing
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration


async def test_max_age_is_honoured(fault: FaultServer) -> None:
    """Within max-age the second request never reaches the server."""
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        first = await client.get("/cache/fresh?max_age=60")
        second = await client.get("/cache/fresh?max_age=60")
    assert fault.hits("/cache/fresh") == 1
    assert first.value.from_cache is False
    assert second.value.from_cache is True
    assert second.value.cache_status == "hit"
    assert second.value.json() == first.value.json()


async def test_etag_revalidation_uses_304_and_the_stored_body(fault: FaultServer) -> None:
    """A stale response is revalidated with If-None-Match; the 304 yields the stored body."""
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        first = await client.get("/cache/etag?max_age=0&etag=v1")
        second = await client.get("/cache/etag?max_age=0&etag=v1")
    requests = fault.requests_to("/cache/etag")
    assert len(requests) == 2
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == '"v1"'
    assert second.value.status_code == 200
    assert second.value.cache_status == "revalidated"
    assert second.value.json() == first.value.json()
    assert first.value.json()["hit"] == 1  # the body of the first (and only) 200


async def test_last_modified_revalidation(fault: FaultServer) -> None:
    """Without an ETag, Last-Modified drives the conditional request (If-Modified-Since)."""
    url = "/cache/lm?cc=no-cache&last_modified=1"
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        await client.get(url)
        second = await client.get(url)
    assert (
        fault.requests_to("/cache/lm")[1]
        .headers["if-modified-since"]
        .startswith("Wed, 21 Oct 2015")
    )
    assert second.value.cache_status == "revalidated"


async def test_a_304_for_another_etag_is_not_used(fault: FaultServer) -> None:
    """A 304 whose ETag is not the stored one's (RFC 9111 §4.3.4) is not taken as a yes:
    the request is sent again without validators and the new 200 is returned and stored."""
    sent: list[int] = []

    async def changed(req: Request, w: ResponseWriter) -> None:
        if req.header("if-none-match") is not None:
            await w.send(304, headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=0")])
            return
        sent.append(len(sent) + 1)
        version = sent[-1]
        headers = [
            ("ETag", f'"v{version}"'),
            ("Cache-Control", "max-age=60" if version > 1 else "max-age=0"),
        ]
        await w.send_json({"v": version}, headers=headers)

    route = fault.add_route(r"/c304-other-etag", changed)
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
            await client.get("/c304-other-etag")
            second = await client.get("/c304-other-etag")
            third = await client.get("/c304-other-etag")
    finally:
        fault.remove_route(route)
    validators = [r.headers.get("if-none-match") for r in fault.requests_to("/c304-other-etag")]
    assert validators == [None, '"v1"', None]
    assert (second.value.json(), second.value.from_cache, second.value.cache_status) == (
        {"v": 2},
        False,
        "miss",
    )
    assert (third.value.json(), third.value.cache_status) == ({"v": 2}, "hit")


async def test_a_revalidation_answered_with_a_new_200_is_a_miss(fault: FaultServer) -> None:
    """When the validator no longer matches, the origin's new 200 comes back as a "miss"."""
    served: list[int] = []

    async def moving(req: Request, w: ResponseWriter) -> None:
        served.append(len(served) + 1)
        headers = [("ETag", f'"v{served[-1]}"'), ("Cache-Control", "max-age=0")]
        await w.send_json({"v": served[-1]}, headers=headers)

    route = fault.add_route(r"/c304-moved", moving)
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
            await client.get("/c304-moved")
            second = await client.get("/c304-moved")
    finally:
        fault.remove_route(route)
    assert fault.requests_to("/c304-moved")[1].headers["if-none-match"] == '"v1"'
    assert (second.value.json(), second.value.from_cache, second.value.cache_status) == (
        {"v": 2},
        False,
        "miss",
    )


async def test_no_store_is_never_stored(fault: FaultServer) -> None:
    """A no-store response is fetched from the server every time."""
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        results = [await client.get("/cache/private?cc=no-store") for _ in range(3)]
    assert fault.hits("/cache/private") == 3
    assert [r.value.json()["hit"] for r in results] == [1, 2, 3]
    assert not any(r.value.from_cache for r in results)


async def test_vary_accept_keeps_variants_apart(fault: FaultServer) -> None:
    """With Vary: Accept, each Accept value gets its own stored response."""
    url = "/cache/neg?max_age=60&vary=Accept"
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        json_1 = await client.get(url, headers={"Accept": "application/json"})
        await client.get(url, headers={"Accept": "application/xml"})
        json_2 = await client.get(url, headers={"Accept": "application/json"})
        xml_2 = await client.get(url, headers={"Accept": "application/xml"})
    assert fault.hits("/cache/neg") == 2
    assert json_2.value.json() == json_1.value.json()
    assert json_2.value.json()["accept"] == "application/json"
    assert xml_2.value.json()["accept"] == "application/xml"
    assert json_2.value.from_cache and xml_2.value.from_cache


async def test_post_invalidates_the_stored_get(fault: FaultServer) -> None:
    """A POST to a URL makes the next GET of that URL go to the server."""
    url = "/cache/item?max_age=60"
    async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
        await client.get(url)
        assert (await client.get(url)).value.from_cache
        assert (await client.post(url, json={"x": 1})).is_success
        after = await client.get(url)
    assert after.value.from_cache is False
    assert after.value.json()["hit"] == 3  # GET, POST, GET reached the server
    assert fault.hits("/cache/item") == 3


async def test_stale_if_error_on_a_dropped_connection(fault: FaultServer) -> None:
    """A transport failure is answered with the stale response the server allowed."""
    state = {"calls": 0}

    async def flaky(req: Request, w: ResponseWriter) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            await w.send_json(
                {"v": "good"}, headers=[("Cache-Control", "max-age=0, stale-if-error=60")]
            )
        else:
            w.abort()

    route = fault.add_route(r"/sie-drop", flaky)
    try:
        async with FlextApiClient(
            base_url=fault.url, plugins=[CachePlugin()], default_plugins=False
        ) as client:
            await client.get("/sie-drop")
            result = await client.get("/sie-drop")
    finally:
        fault.remove_route(route)
    assert state["calls"] == 2
    assert result.value.cache_status == "stale"
    assert result.value.json() == {"v": "good"}


async def test_stale_if_error_after_retries_are_exhausted(fault: FaultServer) -> None:
    """With the default retry stage, RETRIES_EXHAUSTED on 503s is answered from the cache."""
    state = {"calls": 0}

    async def failing(req: Request, w: ResponseWriter) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            await w.send_json(
                {"v": "good"}, headers=[("Cache-Control", "max-age=0, stale-if-error=60")]
            )
        else:
            await w.send_json({"error": "down"}, status=503)

    route = fault.add_route(r"/sie-503", failing)
    try:
        with set_testing(True, attempts=2):
            async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
                await client.get("/sie-503")
                result = await client.get("/sie-503")
    finally:
        fault.remove_route(route)
    assert state["calls"] >= 2
    assert result.is_success, result
    assert result.value.cache_status == "stale"


async def test_without_stale_if_error_the_failure_comes_through(fault: FaultServer) -> None:
    """No stale-if-error anywhere: the failure is returned as is."""
    async with FlextApiClient(
        base_url=fault.url, plugins=[CachePlugin()], default_plugins=False
    ) as client:
        await client.get("/cache/nosie?max_age=0&etag=e")
        fault.reset()
        result = await client.get("/status/503")
    assert result.error_code is ErrorCode.HTTP_STATUS


async def test_redis_backed_cache_is_shared_between_clients(
    fault: FaultServer, redis_server: RedisServer
) -> None:
    """Two clients (two processes in production) share responses through Redis."""
    config = {"url": redis_server.url, "prefix": "t:http-shared:"}
    async with FlextApiCache("redis", config) as shared:
        await shared.clear()
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(shared)]) as one:
            await one.get("/cache/shared?max_age=60")
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin(shared)]) as two:
            second = await two.get("/cache/shared?max_age=60")
        await shared.clear()
    assert fault.hits("/cache/shared") == 1
    assert second.value.from_cache


async def test_a_private_cache_keeps_apart_what_each_credential_got(fault: FaultServer) -> None:
    """One client sending per-request credentials (a token per tenant): a response to
    one ``Authorization`` is never the answer to another. The private cache keyed entries
    by URL only, so tenant B was served tenant A's cached data."""

    async def mine(req: Request, w: ResponseWriter) -> None:
        await w.send_json(
            {"for": req.header("authorization")}, headers=[("Cache-Control", "max-age=60")]
        )

    route = fault.add_route(r"/mine", mine)
    try:
        async with FlextApiClient(base_url=fault.url, plugins=[CachePlugin()]) as client:
            a1 = await client.get("/mine", headers={"Authorization": "Bearer tenant-a"})
            b1 = await client.get("/mine", headers={"Authorization": "Bearer tenant-b"})
            a2 = await client.get("/mine", headers={"Authorization": "Bearer tenant-a"})
            b2 = await client.get("/mine", headers={"Authorization": "Bearer tenant-b"})
            anonymous = await client.get("/mine")
            # An unsafe request by tenant A invalidates A's entry.
            await client.post("/mine", headers={"Authorization": "Bearer tenant-a"})
            a3 = await client.get("/mine", headers={"Authorization": "Bearer tenant-a"})
    finally:
        fault.remove_route(route)
    assert a1.value.json() == {"for": "Bearer tenant-a"}
    assert (b1.value.json(), b1.value.from_cache) == ({"for": "Bearer tenant-b"}, False)
    assert (a2.value.json(), a2.value.cache_status) == ({"for": "Bearer tenant-a"}, "hit")
    assert (b2.value.json(), b2.value.cache_status) == ({"for": "Bearer tenant-b"}, "hit")
    assert (anonymous.value.json(), anonymous.value.from_cache) == ({"for": None}, False)
    assert (a3.value.json(), a3.value.from_cache) == ({"for": "Bearer tenant-a"}, False)
