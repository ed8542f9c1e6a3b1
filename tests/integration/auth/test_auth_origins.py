"""OAuth2 and the client's origins, against real servers on 127.0.0.1.

Two aiohttp servers on two ports are two origins: the API (and token endpoint) the
caller named, and a host a redirect points to. The plugin must not let that other host
receive the client secret, hand out a token, or drive token refreshes; and a caller's
deadline bounds its wait for a token even when the token endpoint hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flext_api import ErrorCode, TimeoutConfig
from flext_api.client import FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials

pytestmark = pytest.mark.integration

SECRET = "s3cret:with%special+chars"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    """One aiohttp server on 127.0.0.1 (port chosen by the OS) that records requests."""

    url: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def record(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        self.seen.append((request.path, dict(request.headers), await request.read()))


async def _serve(server: Server, routes: dict[str, Handler]) -> web.AppRunner:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def other() -> AsyncIterator[Server]:
    """Another origin: whatever it is asked, it records the request and answers 401."""
    server = Server()

    async def anything(request: web.Request) -> web.Response:
        await server.record(request)
        if request.path == "/token":  # were it to be asked, it would hand out a token
            return web.json_response({"access_token": "foreign", "token_type": "Bearer"})
        return web.Response(status=401, text="who are you?")

    runner = await _serve(server, {"/{tail:.*}": anything})
    yield server
    await runner.cleanup()


@pytest.fixture
async def api(other: Server) -> AsyncIterator[Server]:
    """The origin the caller names: a token endpoint, redirects to ``other``, a resource.

    ``/token`` issues ``token-N``; ``/token-redirect`` answers 307 to ``other``'s
    ``/token``; ``/away`` answers 302 to ``other``; ``/resource`` echoes the header.
    """
    server = Server()

    async def token(request: web.Request) -> web.Response:
        await server.record(request)
        issued = server.hits["/token"]
        return web.json_response(
            {"access_token": f"token-{issued}", "token_type": "Bearer", "expires_in": 3600}
        )

    async def token_redirect(request: web.Request) -> web.Response:
        await server.record(request)
        raise web.HTTPTemporaryRedirect(f"{other.url}/token")

    async def away(request: web.Request) -> web.Response:
        await server.record(request)
        raise web.HTTPFound(f"{other.url}/elsewhere")

    async def resource(request: web.Request) -> web.Response:
        await server.record(request)
        return web.json_response({"authorization": request.headers.get("Authorization")})

    runner = await _serve(
        server,
        {"/token": token, "/token-redirect": token_redirect, "/away": away, "/resource": resource},
    )
    yield server
    await runner.cleanup()


@pytest.mark.parametrize("auth_method", ["body", "basic"])
async def test_token_endpoint_redirect_is_refused_not_followed(
    api: Server, other: Server, auth_method: str
) -> None:
    """A 307 from the token endpoint is AUTH_ERROR: the secret (in the form, with
    auth_method="body") never reaches the other origin, nor does its token get used."""
    auth = OAuth2ClientCredentials(
        f"{api.url}/token-redirect",
        "svc",
        SECRET,
        auth_method=auth_method,  # type: ignore[arg-type]
    )
    async with FlextApiClient(api.url, auth=auth, default_plugins=False) as client:
        result = await client.get("/resource")
    err = result.exception
    assert err is not None and err.code is ErrorCode.AUTH_ERROR
    assert err.details["status"] == 307
    assert "redirect" in err.message
    assert SECRET not in str(err)
    assert other.hits == {}
    assert api.hits.get("/resource") is None


async def test_401_from_another_origin_does_not_refresh_the_token(
    api: Server, other: Server
) -> None:
    """A redirect to another origin (which never gets the token) answering 401 is
    returned as it is: no refresh, no replay, so that host cannot drive token fetches."""
    auth = OAuth2ClientCredentials(f"{api.url}/token", "svc", SECRET)
    async with FlextApiClient(api.url, auth=auth, default_plugins=False) as client:
        results = [await client.get("/away", fail_on_http_error=False) for _ in range(3)]
    assert [r.value.status_code for r in results] == [401, 401, 401]
    assert api.hits["/token"] == 1
    assert auth.token_requests == 1
    assert api.hits["/away"] == 3
    assert other.hits == {"/elsewhere": 3}
    assert all("authorization" not in {k.lower() for k in h} for _, h, _ in other.seen)


async def test_401_from_the_same_origin_still_refreshes(api: Server) -> None:
    """The origin check leaves the usual case alone: a 401 from the origin the token was
    sent to refreshes it and replays the call once."""
    refused = {"first": True}

    async def picky(request: web.Request) -> web.Response:
        if refused["first"]:
            refused["first"] = False
            return web.Response(status=401)
        return web.json_response({"authorization": request.headers.get("Authorization")})

    server = Server()
    runner = await _serve(server, {"/token": _issuer(server), "/picky": picky})
    try:
        auth = OAuth2ClientCredentials(f"{server.url}/token", "svc", SECRET)
        async with FlextApiClient(server.url, auth=auth, default_plugins=False) as client:
            result = await client.get("/picky")
    finally:
        await runner.cleanup()
    assert result.value.json() == {"authorization": "Bearer token-2"}
    assert auth.token_requests == 2


def _issuer(server: Server) -> Handler:
    async def token(request: web.Request) -> web.Response:
        await server.record(request)
        issued = server.hits["/token"]
        return web.json_response({"access_token": f"token-{issued}", "token_type": "Bearer"})

    return token


async def test_caller_deadline_bounds_the_wait_for_a_hanging_token_endpoint() -> None:
    """A call whose total deadline passes while the token endpoint hangs returns
    DEADLINE_EXCEEDED (not after the plugin's own token timeout); the fetch goes on,
    and its token serves the next call without a second token request."""
    server = Server()
    release = asyncio.Event()

    async def slow_token(request: web.Request) -> web.Response:
        await server.record(request)
        await release.wait()
        return web.json_response({"access_token": "late", "token_type": "Bearer"})

    async def resource(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    runner = await _serve(server, {"/token": slow_token, "/resource": resource})
    try:
        # The plugin's own token timeout is an hour: only the caller's deadline can end
        # the wait, and the endpoint is held until the call has returned.
        auth = OAuth2ClientCredentials(f"{server.url}/token", "svc", SECRET, timeout=3600)
        async with FlextApiClient(server.url, auth=auth, default_plugins=False) as client:
            first = await client.get("/resource", timeout=TimeoutConfig(total=0.05))
            release.set()
            second = await client.get("/resource")
    finally:
        release.set()
        await runner.cleanup()
    err = first.exception
    assert err is not None and err.code is ErrorCode.DEADLINE_EXCEEDED
    assert "OAuth2 token" in err.message and err.request is not None
    assert second.value.json() == {"authorization": "Bearer late"}
    assert server.hits == {"/token": 1}
