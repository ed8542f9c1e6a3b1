"""Route cache keys: one entry per distinct request, whatever the query looks like; the
decorator's arguments, checked when it runs; invalidate_path, which matches one path exactly."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query

from flext_api.server import cached
from tests.server.conftest import Build
from tests.server.helpers import serve


async def test_repeated_query_parameters_keep_their_order(build: Build) -> None:
    """?a=1&a=2 and ?a=2&a=1 are different lists, so neither is served the other's."""
    app = build()

    @app.get("/tags")
    @cached("tags")
    async def tags(a: Annotated[list[str], Query()] = []) -> list[str]:  # noqa: B006
        return a

    async with serve(app) as client:
        first = await client.get("/tags?a=1&a=2")
        second = await client.get("/tags?a=2&a=1")
        again = await client.get("/tags?a=2&a=1")
    assert first.json() == ["1", "2"]
    assert (second.json(), second.headers["x-cache"]) == (["2", "1"], "MISS")
    assert (again.json(), again.headers["x-cache"]) == (["2", "1"], "HIT")


async def test_parameters_with_different_names_still_share_an_entry(build: Build) -> None:
    """?b=2&a=1 is served the entry stored for ?a=1&b=2 (names are sorted)."""
    app = build()

    @app.get("/pair")
    @cached("pair")
    async def pair(a: str, b: str) -> list[str]:
        return [a, b]

    async with serve(app) as client:
        await client.get("/pair?a=1&b=2")
        swapped = await client.get("/pair?b=2&a=1")
    assert (swapped.json(), swapped.headers["x-cache"]) == (["1", "2"], "HIT")


def files_app(build: Build, calls: list[str]) -> FastAPI:
    app = build()

    @app.get("/files/{name}")
    @cached("files", expire=300)
    async def get_file(name: str, v: int = 0) -> dict[str, Any]:
        calls.append(name)
        return {"name": name, "v": v}

    return app


async def test_invalidate_path_drops_exactly_that_path(build: Build) -> None:
    """/files/report goes, with its query variants; /files/reports, which extends it, stays."""
    calls: list[str] = []
    app = files_app(build, calls)
    async with serve(app) as client:
        for url in ("/files/report", "/files/report?v=2", "/files/reports"):
            await client.get(url)
        assert await app.state.route_cache.invalidate_path("files", "/files/report") == 2
        after = [
            (await client.get(u)).headers["x-cache"] for u in ("/files/reports", "/files/report")
        ]
    assert after == ["HIT", "MISS"]
    assert calls == ["report", "report", "reports", "report"]


@pytest.mark.parametrize("name", ["[draft]", "a*", "q?", "x?y"])
async def test_invalidate_path_takes_glob_characters_literally(build: Build, name: str) -> None:
    """A path holding [ ] * ? (decoded from %5B, %3F...) is invalidated, and nothing else."""
    calls: list[str] = []
    app = files_app(build, calls)
    encoded = name.replace("[", "%5B").replace("]", "%5D").replace("?", "%3F")
    async with serve(app) as client:
        for url in (f"/files/{encoded}", "/files/d", "/files/a", "/files/q", "/files/x"):
            await client.get(url)
        assert await app.state.route_cache.invalidate_path("files", f"/files/{name}") == 1
        again = await client.get(f"/files/{encoded}")
        others = [(await client.get(f"/files/{n}")).headers["x-cache"] for n in "daqx"]
    assert (again.json()["name"], again.headers["x-cache"]) == (name, "MISS")
    assert others == ["HIT"] * 4


async def test_a_percent_in_the_decoded_path_is_not_confused_with_an_escape(build: Build) -> None:
    """/files/q%253F (the name "q%3F") is not served the entry of /files/q%3F (the name "q?")."""
    calls: list[str] = []
    app = files_app(build, calls)
    async with serve(app) as client:
        first = await client.get("/files/q%3F")
        second = await client.get("/files/q%253F")
    assert (first.json()["name"], second.json()["name"]) == ("q?", "q%3F")
    assert second.headers["x-cache"] == "MISS"
    assert calls == ["q?", "q%3F"]


@pytest.mark.parametrize("expire", [0, -1, float("nan"), "300"])
def test_a_bad_expire_is_refused_when_the_decorator_runs(expire: Any) -> None:
    """@cached(expire=0) used to be accepted, and then every request failed with a 500."""
    with pytest.raises((TypeError, ValueError), match="expire must be"):
        cached("zero", expire=expire)


@pytest.mark.parametrize("argument", ["tags", "vary"])
def test_one_str_as_tags_or_vary_is_refused_when_the_decorator_runs(argument: str) -> None:
    """tags="catalog" would be the tags "c", "a", "t"...: invalidate_tag("catalog") missed it."""
    options: dict[str, Any] = {argument: "catalog"}
    with pytest.raises(TypeError, match=f"{argument} must be an iterable of str, not one str"):
        cached("products", **options)


async def test_tags_given_as_a_list_are_invalidated(build: Build) -> None:
    """tags=["catalog"]: invalidate_tag("catalog") drops the entry."""
    calls: list[str] = []
    app = build()

    @app.get("/products")
    @cached("products", tags=["catalog"])
    async def products() -> list[str]:
        calls.append("products")
        return ["a"]

    async with serve(app) as client:
        await client.get("/products")
        assert await app.state.route_cache.invalidate_tag("catalog") == 1
        assert (await client.get("/products")).headers["x-cache"] == "MISS"
    assert calls == ["products", "products"]
