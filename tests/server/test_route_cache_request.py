"""@cached on routes that take the request (or the response) themselves: the seed-004 shape."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Request, Response

from flext_api.server import cached
from tests.server.conftest import Build
from tests.server.helpers import serve


async def test_route_taking_request_and_response_is_served_and_cached(build: Build) -> None:
    """Seed 004's route gets its request, keeps its response headers, and is computed once."""
    app = build()
    calls: list[str] = []

    @app.get("/users/{user_id}")
    @cached("user", expire=300)
    async def get_user(request: Request, response: Response, user_id: int) -> dict[str, Any]:
        calls.append(request.url.path)
        response.headers["X-User"] = str(user_id)
        return {"id": user_id, "agent": request.headers.get("user-agent")}

    async with serve(app) as client:
        first = await client.get("/users/1", headers={"User-Agent": "probe"})
        second = await client.get("/users/1", headers={"User-Agent": "probe"})
    assert (first.status_code, first.json()) == (200, {"id": 1, "agent": "probe"})
    assert first.headers["x-user"] == second.headers["x-user"] == "1"
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json() == first.json()
    assert calls == ["/users/1"]


async def test_request_parameter_of_any_name_annotated_or_sync(build: Build) -> None:
    """`req: Annotated[Request, ...]` on a sync route is filled too, and keys still vary."""
    app = build()

    @app.get("/where")
    @cached("where", vary=["accept-language"])
    def where(req: Annotated[Request, "the request"], q: str = "") -> dict[str, str]:
        return {"path": req.url.path, "q": q, "lang": req.headers.get("accept-language", "")}

    async with serve(app) as client:
        en = await client.get("/where?q=a", headers={"Accept-Language": "en"})
        de = await client.get("/where?q=a", headers={"Accept-Language": "de"})
    assert en.json() == {"path": "/where", "q": "a", "lang": "en"}
    assert (de.json()["lang"], de.headers["x-cache"]) == ("de", "MISS")


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_uncached_paths_still_pass_the_request(build: Build, method: str) -> None:
    """A POST (never cached) and an authorized GET (bypassing the cache) get the request too."""
    app = build()

    @app.api_route("/echo", methods=["GET", "POST"])
    @cached("echo")
    async def echo(request: Request) -> str:
        return request.method

    async with serve(app) as client:
        response = await client.request(method, "/echo", headers={"Authorization": "Bearer x"})
    assert (response.status_code, response.json()) == (200, method)
