"""Route cache keys: one entry per distinct request, whatever the query looks like."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

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
