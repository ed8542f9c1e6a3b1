"""@cached routes: keyed responses, single flight, what is never stored, invalidation."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Response

from flext_api.cache import FlextApiCache
from flext_api.server import RouteCache, cached
from tests.server.helpers import build_app, serve
from tests.servers.redis_server import RedisServer


def products_app(calls: list[str]) -> FastAPI:
    app = build_app(stream=io.StringIO())

    @app.get("/products")
    @cached("products", expire=300)
    async def list_products(page: int = 1) -> dict[str, object]:
        calls.append(f"page {page}")
        return {"page": page, "items": ["a", "b"]}

    return app


async def test_seed_route_is_computed_once() -> None:
    """The seed's @cached("products", expire=300): the second GET is served from cache."""
    calls: list[str] = []
    async with serve(products_app(calls)) as client:
        first = await client.get("/products")
        second = await client.get("/products")
    assert first.json() == second.json() == {"page": 1, "items": ["a", "b"]}
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert calls == ["page 1"]


async def test_query_is_part_of_the_key_in_any_order() -> None:
    """Different queries are different entries; the same parameters in another order are not."""
    calls: list[str] = []
    app = build_app(stream=io.StringIO())

    @app.get("/search")
    @cached("search")
    async def search(q: str, page: int = 1) -> str:
        calls.append(f"{q}/{page}")
        return f"{q}/{page}"

    async with serve(app) as client:
        await client.get("/search?q=x&page=2")
        await client.get("/search?page=2&q=x")
        await client.get("/search?q=y&page=2")
    assert calls == ["x/2", "y/2"]


async def test_concurrent_misses_compute_once() -> None:
    """Requests arriving while the first computes wait for it instead of recomputing."""
    calls: list[int] = []
    gate = asyncio.Event()
    app = build_app(stream=io.StringIO())

    @app.get("/slow")
    @cached("slow")
    async def slow() -> str:
        calls.append(1)
        await gate.wait()
        return "done"

    async with serve(app) as client:
        replies = [asyncio.create_task(client.get("/slow")) for _ in range(5)]
        for _ in range(1000):
            await asyncio.sleep(0)
            if app.state.flext.in_flight == 5:
                break
        gate.set()
        bodies = [(await r).json() for r in replies]
    assert bodies == ["done"] * 5
    assert calls == [1]


@pytest.mark.parametrize("cache_control", ["no-store", "private, max-age=60"])
async def test_no_store_and_private_are_never_stored(cache_control: str) -> None:
    """A response with no-store or private is recomputed on every request."""
    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.get("/me")
    @cached("me")
    async def me(response: Response) -> str:
        calls.append(1)
        response.headers["Cache-Control"] = cache_control
        return "mine"

    async with serve(app) as client:
        await client.get("/me")
        await client.get("/me")
    assert calls == [1, 1]


async def test_private_is_stored_when_the_route_allows_it() -> None:
    """allow_private=True stores a private response."""
    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.get("/me")
    @cached("me", allow_private=True)
    async def me() -> Response:
        calls.append(1)
        return Response("mine", headers={"Cache-Control": "private"})

    async with serve(app) as client:
        await client.get("/me")
        assert (await client.get("/me")).text == "mine"
    assert calls == [1]


async def test_authorized_requests_bypass_the_cache() -> None:
    """A request with Authorization is neither served from nor stored in the cache."""
    calls: list[str] = []
    async with serve(products_app(calls)) as client:
        await client.get("/products")
        authorized = await client.get("/products", headers={"Authorization": "Bearer t"})
    assert calls == ["page 1", "page 1"]
    assert "x-cache" not in authorized.headers


async def test_vary_header_values_split_the_key() -> None:
    """Headers named in vary= make separate entries per value."""
    calls: list[str] = []
    app = build_app(stream=io.StringIO())

    @app.get("/greeting")
    @cached("greeting", vary=["Accept-Language"])
    async def greeting() -> Response:
        calls.append("x")
        return Response("hi", headers={"Vary": "Accept-Language"})

    async with serve(app) as client:
        for lang in ("en", "fr", "en"):
            await client.get("/greeting", headers={"Accept-Language": lang})
    assert calls == ["x", "x"]


async def test_undeclared_vary_is_not_stored() -> None:
    """A response varying on a header the route did not declare is not stored."""
    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.get("/v")
    @cached("v")
    async def v() -> Response:
        calls.append(1)
        return Response("x", headers={"Vary": "Cookie"})

    async with serve(app) as client:
        await client.get("/v")
        await client.get("/v")
    assert calls == [1, 1]


async def test_error_status_is_not_stored() -> None:
    """A 500 from the route is not cached."""
    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.get("/flaky")
    @cached("flaky")
    def flaky() -> Response:
        calls.append(1)
        return Response("down", status_code=503)

    async with serve(app) as client:
        await client.get("/flaky")
        await client.get("/flaky")
    assert calls == [1, 1]


async def test_invalidate_tag_and_path_drop_entries() -> None:
    """invalidate_tag(namespace) and invalidate_path() make the next request recompute."""
    calls: list[str] = []
    app = products_app(calls)
    async with serve(app) as client:
        await client.get("/products")
        assert await app.state.route_cache.invalidate_tag("products") == 1
        await client.get("/products?page=2")
        assert await app.state.route_cache.invalidate_path("products", "/products") == 1
        await client.get("/products?page=2")
    assert calls == ["page 1", "page 2", "page 2"]


async def test_post_is_never_cached() -> None:
    """Only GET and HEAD are cached."""
    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.post("/orders")
    @cached("orders")
    async def create() -> str:
        calls.append(1)
        return "created"

    async with serve(app) as client:
        await client.post("/orders", json={})
        await client.post("/orders", json={})
    assert calls == [1, 1]


@pytest.mark.integration
async def test_redis_store_is_shared_between_apps(redis_server: RedisServer) -> None:
    """Two apps (two processes' worth) on one Redis store: the second one hits."""
    calls: list[str] = []
    first, second = products_app(calls), products_app(calls)
    stores = [FlextApiCache("redis", {"url": redis_server.url}) for _ in range(2)]
    first.state.route_cache = RouteCache(stores[0])
    second.state.route_cache = RouteCache(stores[1])
    async with serve(first) as one, serve(second) as two:
        await one.get("/products")
        reply = await two.get("/products")
    for store in stores:
        await store.close()
    assert calls == ["page 1"]
    assert reply.json() == {"page": 1, "items": ["a", "b"]}
    assert reply.headers["x-cache"] == "HIT"


async def test_waiters_of_an_unstorable_response_compute_their_own() -> None:
    """Requests coalesced behind a no-store response never receive that response."""
    calls: list[int] = []
    gate = asyncio.Event()
    app = build_app(stream=io.StringIO())

    @app.get("/mine")
    @cached("mine")
    async def mine() -> Response:
        calls.append(1)
        await gate.wait()
        return Response(f"for caller {len(calls)}", headers={"Cache-Control": "no-store"})

    async with serve(app) as client:
        replies = [asyncio.create_task(client.get("/mine")) for _ in range(2)]
        for _ in range(1000):
            await asyncio.sleep(0)
            if app.state.flext.in_flight == 2:
                break
        gate.set()
        results = [await r for r in replies]
    assert sorted(r.headers["x-cache"] for r in results if "x-cache" in r.headers) == ["BYPASS"]
    assert len(calls) == 2


async def test_route_errors_pass_through_uncached() -> None:
    """An HTTPException raised by the route reaches the client and is not cached."""
    from fastapi import HTTPException

    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    @app.get("/missing")
    @cached("missing")
    async def missing() -> str:
        calls.append(1)
        raise HTTPException(404, "nope")

    async with serve(app) as client:
        assert (await client.get("/missing")).status_code == 404
        assert (await client.get("/missing")).status_code == 404
    assert calls == [1, 1]


async def test_invalidate_by_key_and_repr() -> None:
    """An entry is dropped by its documented key; the repr counts entries."""
    calls: list[str] = []
    app = products_app(calls)
    async with serve(app) as client:
        await client.get("/products?page=3")
        cache = app.state.route_cache
        assert repr(cache) == "<RouteCache 1 entries>"
        assert await cache.invalidate("products:GET:/products?page=3#-") is True
        await client.get("/products?page=3")
        await cache.aclose()
    assert calls == ["page 3", "page 3"]


async def test_streaming_response_is_not_stored() -> None:
    """A StreamingResponse passes through and is computed again next time."""
    from starlette.responses import StreamingResponse

    calls: list[int] = []
    app = build_app(stream=io.StringIO())

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    @app.get("/stream")
    @cached("stream")
    async def stream() -> StreamingResponse:
        calls.append(1)
        return StreamingResponse(body())

    async with serve(app) as client:
        assert (await client.get("/stream")).text == "chunk"
        await client.get("/stream")
    assert calls == [1, 1]


async def test_wrong_route_cache_type_is_a_type_error() -> None:
    """Something other than a RouteCache in app.state.route_cache fails loudly."""
    calls: list[str] = []
    app = products_app(calls)
    app.state.route_cache = {}
    async with serve(app) as client:
        assert (await client.get("/products")).status_code == 500
    assert calls == []


async def test_route_with_local_annotations_still_works() -> None:
    """A route whose annotations name a class local to a function is still served."""

    class Query:
        pass

    app = build_app(stream=io.StringIO())

    def endpoint(q: str = "x", unused: Query | None = None) -> str:
        return q

    endpoint.__annotations__["unused"] = "Query | None"
    app.get("/local")(cached("local")(endpoint))
    async with serve(app) as client:
        assert (await client.get("/local?q=y")).json() == "y"
