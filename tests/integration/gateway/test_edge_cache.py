"""The shared cache of ``cache: true`` routes, through a real gateway to a real origin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import aiohttp
import pytest

from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


async def test_second_get_is_served_from_the_cache(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A fresh stored response answers the second GET without reaching the origin."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    first = await fetch(gw.url + "/c/a")
    second = await fetch(gw.url + "/c/a")
    assert (first[2], second[2], origin.hits["a"]) == (first[2], first[2], 1)
    assert "age" in second[1]


async def test_private_and_no_store_are_not_shared(origin: EdgeOrigin, run_gateway: Run) -> None:
    """``private`` and ``no-store`` responses reach the origin every time."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    for _ in range(2):
        await fetch(gw.url + "/c/p?cc=private,max-age=60")
        await fetch(gw.url + "/c/n?cc=no-store")
    assert (origin.hits["p"], origin.hits["n"]) == (2, 2)


async def test_authorization_needs_an_explicit_permission(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A response to a request with Authorization is shared only with s-maxage or public."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    auth = {"Authorization": "Bearer x"}
    for _ in range(2):
        await fetch(gw.url + "/c/plain?cc=max-age=60", headers=auth)
        await fetch(gw.url + "/c/shared?cc=s-maxage=60", headers=auth)
    assert (origin.hits["plain"], origin.hits["shared"]) == (2, 1)


async def test_concurrent_misses_make_one_upstream_request(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Twenty concurrent identical misses are collapsed into one origin fetch."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    results = await asyncio.gather(*(fetch(gw.url + "/c/burst?ms=300") for _ in range(20)))
    assert {r[0] for r in results} == {200}
    assert origin.hits["burst"] == 1


async def test_unsafe_method_invalidates_the_url(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A successful POST to a URL drops its stored response."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/inv")
    await fetch(gw.url + "/c/inv", method="POST")
    await fetch(gw.url + "/c/inv")
    assert origin.hits["inv"] == 3


async def test_stale_entry_is_revalidated_with_its_etag(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A stale entry is revalidated: the origin's 304 is turned into the stored 200."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    first = await fetch(gw.url + "/c/tag?cc=max-age=0&etag=v1")
    second = await fetch(gw.url + "/c/tag?cc=max-age=0&etag=v1")
    sent = [r for r in origin.requests if r["path"] == "/c/tag"]
    assert (second[0], second[2]) == (200, first[2])
    assert sent[1]["headers"].get("if-none-match") == '"v1"'


async def test_a_304_for_another_etag_does_not_freshen_the_entry(
    fault: FaultServer, run_gateway: Run
) -> None:
    """A 304 whose ETag is not the entry's (RFC 9111 §4.3.4) freshens nothing: the gateway
    asks again without validators and answers with the new 200, which it stores."""
    sent: list[int] = []

    async def changed(req: Request, w: ResponseWriter) -> None:
        if req.header("if-none-match") is not None:
            await w.send(304, headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=60")])
            return
        sent.append(len(sent) + 1)
        age = "max-age=60" if sent[-1] > 1 else "max-age=0"
        await w.send(200, b"v%d" % sent[-1], [("ETag", f'"v{sent[-1]}"'), ("Cache-Control", age)])

    route = fault.add_route(r"/gw304-other-etag", changed)
    try:
        gw = run_gateway(edge_config(fault.url, cache=True))
        first = await fetch(gw.url + "/gw304-other-etag")
        second = await fetch(gw.url + "/gw304-other-etag")
        third = await fetch(gw.url + "/gw304-other-etag")
    finally:
        fault.remove_route(route)
    validators = [r.headers.get("if-none-match") for r in fault.requests_to("/gw304-other-etag")]
    assert validators == [None, '"v1"', None]
    assert [(a[0], a[2]) for a in (first, second, third)] == [
        (200, b"v1"),
        (200, b"v2"),
        (200, b"v2"),
    ]
    assert second[1]["etag"] == '"v2"'


async def test_a_background_revalidation_with_a_chunked_answer_does_not_hang(
    fault: FaultServer, run_gateway: Run
) -> None:
    """stale-while-revalidate refreshes in the background with no client behind it; its
    chunked 200 made the proxy's disconnect watch spin on a receive that answered at
    once, and the gateway's event loop hung: nothing else was answered."""
    answers: list[int] = []

    async def chunked(req: Request, w: ResponseWriter) -> None:
        answers.append(len(answers) + 1)
        cc = "max-age=0, stale-while-revalidate=600"
        await w.send_head(200, [("Transfer-Encoding", "chunked"), ("Cache-Control", cc)])
        await w.write_chunk(b"v%d" % answers[-1])
        await w.end_chunks()

    route = fault.add_route(r"/gw-swr-chunked", chunked)
    try:
        gw = run_gateway(edge_config(fault.url, cache=True))
        first = await fetch(gw.url + "/gw-swr-chunked")
        stale = await fetch(gw.url + "/gw-swr-chunked")  # answered stale, refreshed behind
        assert await eventually(lambda: len(answers) >= 2)  # the background refresh
        # The gateway still answers (a hung loop would time each fetch out), and the
        # refreshed answer replaces the stale one once the refresh has stored it: the
        # origin seeing the request does not mean the store is done, so ask until then.
        timeout = aiohttp.ClientTimeout(total=30)
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        after = await fetch(gw.url + "/gw-swr-chunked", timeout=timeout)
        while after[2] == b"v1" and loop.time() < end:
            await asyncio.sleep(0.05)
            after = await fetch(gw.url + "/gw-swr-chunked", timeout=timeout)
    finally:
        fault.remove_route(route)
    assert (first[0], first[2], stale[0], stale[2]) == (200, b"v1", 200, b"v1")
    assert after[0] == 200
    assert after[2] in {b"v%d" % n for n in range(2, len(answers) + 1)}  # a refresh's


async def test_big_bodies_stream_through_unstored(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A body above max_body_bytes is passed on whole but never stored."""
    config = edge_config(origin.url, cache=True, edge={"cache": {"max_body_bytes": 1000}})
    gw = run_gateway(config)
    first = await fetch(gw.url + "/c/big?n=5000")
    await fetch(gw.url + "/c/big?n=5000")
    assert (len(first[2]), origin.hits["big"]) == (5000, 2)


async def test_event_stream_is_relayed_event_by_event(origin: EdgeOrigin, run_gateway: Run) -> None:
    """An SSE response on a cached route reaches the client before the stream ends."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/sse") as response:
        origin.release("one")
        line = await asyncio.wait_for(response.content.readline(), 10)
        origin.release("end")
        await response.read()
    assert line == b"data: one\n"


async def test_purge_endpoint_drops_an_entry(origin: EdgeOrigin, run_gateway: Run) -> None:
    """POST /admin/cache/purge?url=... makes the next GET a miss."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/pg")
    host = f"127.0.0.1:{gw.port}"
    admin = gw.admin
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/admin/cache/purge",
        "query_string": f"url=http://{host}/c/pg".encode(),
        "headers": [(b"authorization", b"Bearer t0ken")],
    }
    gw.call(admin(scope, receive, send))
    await fetch(gw.url + "/c/pg")
    assert (sent[0]["status"], origin.hits["pg"]) == (200, 2)


async def test_routes_never_answer_from_each_others_entries(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Two cached routes that take the same URL (one matched by a header) each keep their
    own entries: the anonymous route's request is not answered with what the other
    route stored. Invalidation and purge of the URL cover both."""
    config = edge_config(origin.url, cache=True)
    keyed = {"name": "keyed", "cluster": "svc", "cache": True,
             "match": {"path_prefix": "/", "headers": {"X-Team": "*"}}}  # fmt: skip
    config["routes"].insert(0, keyed)
    gw = run_gateway(config)
    team = {"X-Team": "blue"}
    await fetch(gw.url + "/c/shared", headers=team)
    await fetch(gw.url + "/c/shared", headers=team)
    assert origin.hits["shared"] == 1
    await fetch(gw.url + "/c/shared")  # the other route: its own miss
    await fetch(gw.url + "/c/shared")
    assert origin.hits["shared"] == 2
    await fetch(gw.url + "/c/shared", method="POST")  # invalidates the URL on both routes
    await fetch(gw.url + "/c/shared", headers=team)
    await fetch(gw.url + "/c/shared")
    assert origin.hits["shared"] == 5


async def test_stale_answer_when_the_origin_is_gone(origin: EdgeOrigin, run_gateway: Run) -> None:
    """With every instance unreachable, a stale entry answers instead of a 502."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    first = await fetch(gw.url + "/c/gone?cc=max-age=0,stale-if-error=60&etag=v")
    origin.stop()
    second = await fetch(gw.url + "/c/gone")
    again = await fetch(gw.url + "/c/gone?cc=max-age=0,stale-if-error=60&etag=v")
    assert (second[0], again[0], again[2]) == (502, 200, first[2])


async def test_redis_store_is_shared_by_two_gateways(
    origin: EdgeOrigin, redis_server: Any, run_gateway: Run
) -> None:
    """With store: redis, what one gateway stored answers the other's request."""
    edge = {"redis_url": redis_server.url, "cache": {"store": "redis", "namespace": "t-shared:"}}
    one = run_gateway(edge_config(origin.url, cache=True, edge=edge))
    two = run_gateway(edge_config(origin.url, cache=True, edge=edge))
    first = await fetch(one.url + "/c/shared", headers={"Host": "api.test"})
    second = await fetch(two.url + "/c/shared", headers={"Host": "api.test"})
    assert (second[2], origin.hits["shared"]) == (first[2], 1)
    assert "age" in second[1]


async def test_a_dead_cache_store_is_a_miss_not_an_error(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """With the Redis store stopped, cached routes still answer from the origin (no 500)."""
    from tests.servers.redis_server import RedisServer

    redis = RedisServer().start()
    try:
        edge = {"redis_url": redis.url, "cache": {"store": "redis"}}
        gw = run_gateway(edge_config(origin.url, cache=True, edge=edge))
        await fetch(gw.url + "/c/down")
        redis.stop()
        answers = [await fetch(gw.url + "/c/down") for _ in range(2)]
        posted = await fetch(gw.url + "/c/down", method="POST")
    finally:
        redis.stop()
    assert [a[0] for a in answers] == [200, 200] and posted[0] == 200
    assert origin.hits["down"] == 4


async def test_no_cache_requests_do_not_wait_for_a_leader(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A request with Cache-Control: no-cache goes upstream even while a miss is in flight."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    slow = asyncio.create_task(fetch(gw.url + "/c/nc?ms=500"))
    while origin.hits["nc"] == 0:  # noqa: ASYNC110 - the origin's counter, polled
        await asyncio.sleep(0.01)
    await fetch(gw.url + "/c/nc?ms=500", headers={"Cache-Control": "no-cache"})
    await slow
    assert origin.hits["nc"] == 2


async def test_surrogate_control_targeted_at_the_gateway_is_obeyed(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The gateway announces ``Surrogate-Capability: flext="Surrogate/1.0"``; a
    ``Surrogate-Control`` directive targeted ``;flext`` applies to it (over the client's
    ``Cache-Control: no-store``), one targeted at another device does not, and the client
    never sees ``Surrogate-Control``."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    for _ in range(2):
        mine = await fetch(gw.url + "/c/mine?cc=no-store&sc=max-age%3D60%3Bflext")
        await fetch(gw.url + "/c/other?cc=no-store&sc=max-age%3D60%3Bakamai")
    assert (origin.hits["mine"], origin.hits["other"]) == (1, 2)
    assert "surrogate-control" not in mine[1]
    announced = {r["headers"].get("surrogate-capability") for r in origin.requests}
    assert announced == {'flext="Surrogate/1.0"'}


async def test_a_purge_of_everything_keeps_other_namespaces_and_app_keys(
    origin: EdgeOrigin, redis_server: Any, run_gateway: Run
) -> None:
    """Purging everything deleted every key under flext:cache: in the shared Redis: the
    entries of gateways of another namespace and an app's own cache keys went too."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    try:
        await client.set("flext:cache:app-entry", b"kept")
        config = {"redis_url": redis_server.url, "cache": {"store": "redis"}}
        prod = run_gateway(edge_config(origin.url, cache=True, edge={
            **config, "cache": {"store": "redis", "namespace": "prod:"}}))  # fmt: skip
        staging = run_gateway(edge_config(origin.url, cache=True, edge={
            **config, "cache": {"store": "redis", "namespace": "staging:"}}))  # fmt: skip
        await fetch(prod.url + "/c/ns?cc=max-age=600")
        await fetch(staging.url + "/c/ns?cc=max-age=600")
        assert origin.hits["ns"] == 2
        headers = {"Authorization": "Bearer t0ken"}
        status, _, _ = await fetch(
            staging.admin_url + "/admin/cache/purge", method="POST", headers=headers
        )
        await fetch(prod.url + "/c/ns?cc=max-age=600")  # still cached
        await fetch(staging.url + "/c/ns?cc=max-age=600")  # purged: fetched again
        kept = await client.get("flext:cache:app-entry")
    finally:
        await client.aclose()
    assert (status, origin.hits["ns"], kept) == (200, 3, b"kept")
