"""Redirect rules, checked over MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client.auth import ApiKeyAuth, BearerAuth
from flext_api.transports import MockTransport


def _hop(status: int, target: str = "/final") -> MockTransport:
    def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/final"):
            return HttpResponse(
                200, content=request.method.encode() + b":" + (request.content or b"")
            )
        return HttpResponse(status, headers={"Location": target})

    return MockTransport(handler)


async def test_307_and_308_keep_method_and_body() -> None:
    """307/308 replay the method and body."""
    for status in (307, 308):
        async with FlextApiClient("http://h", transport=_hop(status), default_plugins=False) as c:
            assert (await c.post("/start", content=b"data")).value.content == b"POST:data"


async def test_301_302_after_post_become_get() -> None:
    """301/302 after POST switch to GET and drop the body and its headers."""
    for status in (301, 302):
        transport = _hop(status)
        async with FlextApiClient("http://h", transport=transport, default_plugins=False) as c:
            response = (await c.post("/start", json={"a": 1})).value
        assert response.content == b"GET:"
        assert "content-type" not in transport.requests[-1].headers


async def test_streamed_body_is_never_replayed_on_redirect() -> None:
    """A 307 for a streamed body fails with INVALID_REQUEST instead of sending it twice."""

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with FlextApiClient("http://h", transport=_hop(307), default_plugins=False) as c:
        result = await c.post("/start", content=body())
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "cannot be replayed" in (result.error or "")


async def test_redirect_to_a_bad_scheme_is_invalid() -> None:
    """A Location with an unsupported scheme is INVALID_REQUEST."""
    async with FlextApiClient(
        "http://h", transport=_hop(302, "file:///etc/passwd"), default_plugins=False
    ) as c:
        assert (await c.get("/start")).error_code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("target", ["service://admin/secrets", "SERVICE://admin/secrets"])
async def test_redirect_to_a_service_url_is_refused(target: str) -> None:
    """A server's Location cannot name a service of the client's registry."""
    transport = _hop(302, target)
    async with FlextApiClient("http://h", transport=transport, default_plugins=False) as c:
        result = await c.get("/start")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "refused: only http and https" in (result.error or "")
    assert [r.url for r in transport.requests] == ["http://h/start"]


async def test_streamed_redirects_close_intermediate_responses() -> None:
    """Following redirects while streaming releases every intermediate response."""
    transport = _hop(302)
    async with FlextApiClient("http://h", transport=transport, default_plugins=False) as c:
        async with c.stream("GET", "/start") as resp:
            assert await resp.aread() == b"GET:"
        assert transport.stats()["in_use"] == 0


async def test_too_many_streamed_redirects_release_the_last_one() -> None:
    """The redirect limit while streaming closes the final redirect response too."""
    transport = _hop(302, "/loop")
    from flext_api import ClientConfig

    async with FlextApiClient(
        "http://h", transport=transport, default_plugins=False, config=ClientConfig(max_redirects=3)
    ) as c:
        result = await c.request("GET", "/start", extensions={"stream": True})
        assert result.error_code is ErrorCode.TOO_MANY_REDIRECTS
        assert transport.stats()["in_use"] == 0
        assert len(transport.requests) == 4


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        (ApiKeyAuth("k3y"), "x-api-key"),
        (ApiKeyAuth("k3y", header="X-Tenant-Token"), "x-tenant-token"),
        (BearerAuth("t0ken"), "authorization"),
    ],
)
async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    auth: FlextApiPlugin, header: str
) -> None:
    """An auth plugin's header (a default-sensitive name or one it marked) stays on the
    origin it was meant for; a same-origin hop keeps it."""

    def handler(request: HttpRequest) -> HttpResponse:
        if request.url == "http://h/start":
            return HttpResponse(302, headers={"Location": "/same"})
        if request.url == "http://h/same":
            return HttpResponse(302, headers={"Location": "http://other/final"})
        return HttpResponse(200)

    transport = MockTransport(handler)
    async with FlextApiClient("http://h", transport=transport, auth=auth) as client:
        assert (await client.get("/start")).is_success
    carried = [header in r.headers for r in transport.requests]
    assert carried == [True, True, False]
