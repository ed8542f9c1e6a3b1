"""Hostile servers on 127.0.0.1 against the client's auth, redirects and request building.

Two aiohttp servers on two ports are two origins: ``api``, the one the caller names,
and ``other``, where a redirect may point. Each test states one rule that a server (or a
caller's input) once broke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.auth import BearerAuth, OAuth2ClientCredentials
from flext_api.transports import AiohttpTransport, H1Transport, HttpxTransport, Transport
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "h1": H1Transport,
    "httpx2": HttpxTransport,
}


@dataclass
class Server:
    """One aiohttp server on 127.0.0.1 (port chosen by the OS) that records requests."""

    url: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    authorization: list[str | None] = field(default_factory=list)

    def record(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        self.authorization.append(request.headers.get("Authorization"))


async def _serve(server: Server, routes: dict[str, Handler]) -> web.AppRunner:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.fixture
async def api() -> AsyncIterator[Server]:
    """``/token`` issues ``token-N``; ``/protected`` answers 401 to any request;
    ``/to?url=U`` answers 302 to ``U``; ``/echo`` answers 200."""
    server = Server()

    async def token(request: web.Request) -> web.Response:
        server.record(request)
        return web.json_response(
            {"access_token": f"token-{server.hits['/token']}", "token_type": "Bearer"}
        )

    async def protected(request: web.Request) -> web.Response:
        server.record(request)
        return web.Response(status=401)

    async def to(request: web.Request) -> web.Response:
        server.record(request)
        raise web.HTTPFound(request.query["url"])

    async def echo(request: web.Request) -> web.Response:
        server.record(request)
        return web.json_response({})

    runner = await _serve(
        server, {"/token": token, "/protected": protected, "/to": to, "/echo": echo}
    )
    yield server
    await runner.cleanup()


@pytest.fixture
async def other(api: Server) -> AsyncIterator[Server]:
    """Another origin: ``/back`` sends the caller back to ``api``'s ``/protected``."""
    server = Server()

    async def back(request: web.Request) -> web.Response:
        server.record(request)
        raise web.HTTPFound(f"{api.url}/protected")

    async def echo(request: web.Request) -> web.Response:
        server.record(request)
        return web.json_response({})

    runner = await _serve(server, {"/back": back, "/echo": echo})
    yield server
    await runner.cleanup()


# -- OAuth2 -----------------------------------------------------------------------------------


async def test_401_from_the_same_origin_reached_through_another_does_not_refresh(
    api: Server, other: Server
) -> None:
    """A -> B -> A answering 401 (the token was dropped at B) refreshes nothing: B
    cannot make the client fetch a token per call by sending it back home."""
    auth = OAuth2ClientCredentials(f"{api.url}/token", "svc", "s3cret")
    async with FlextApiClient(api.url, auth=auth, default_plugins=False) as client:
        results = [
            await client.get("/to", params={"url": f"{other.url}/back"}, fail_on_http_error=False)
            for _ in range(3)
        ]
    assert [r.value.status_code for r in results] == [401, 401, 401]
    assert auth.token_requests == 1
    assert api.hits["/protected"] == 3
    assert other.authorization == [None, None, None]


async def test_401_to_the_token_itself_still_refreshes(api: Server) -> None:
    """The same origin refusing the token it was sent still gets one refresh and replay."""
    auth = OAuth2ClientCredentials(f"{api.url}/token", "svc", "s3cret")
    async with FlextApiClient(api.url, auth=auth, default_plugins=False) as client:
        result = await client.get("/protected", fail_on_http_error=False)
    assert result.value.status_code == 401
    assert auth.token_requests == 2
    bearers = [a for a in api.authorization if a and a.startswith("Bearer")]
    assert bearers == ["Bearer token-1", "Bearer token-2"]


# -- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["api", "other"])
async def test_a_location_naming_user_info_is_refused(
    api: Server, other: Server, where: str
) -> None:
    """``Location: http://user:pass@host/`` is INVALID_REQUEST, on any origin: the
    transport would send credentials the server chose (clashing with the caller's own
    Authorization on the same origin); the message does not show them."""
    target = (api if where == "api" else other).url.replace("://", "://mallory:pw0wn3d@")
    async with FlextApiClient(api.url, auth=BearerAuth("tok"), default_plugins=False) as client:
        result = await client.get("/to", params={"url": f"{target}/echo"})
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert "user info" in err.message
    assert "pw0wn3d" not in str(err)
    assert api.hits.get("/echo") is None and other.hits == {}


async def test_the_callers_own_user_info_still_follows_a_relative_redirect(
    fault: FaultServer,
) -> None:
    """A relative Location on the same origin keeps the caller's own user info."""
    url = fault.url.replace("://", "://me:mine@")
    async with FlextApiClient(default_plugins=False) as client:
        result = await client.get(f"{url}/redirect-to", params={"url": "/echo"})
    assert result.is_success
    assert fault.requests_to("/echo")[0].headers["authorization"] == "Basic bWU6bWluZQ=="


async def test_an_at_sign_in_the_locations_query_is_not_user_info(
    api: Server, other: Server
) -> None:
    """An ``@`` past the authority (``/echo?to=a@b``) is followed as usual."""
    async with FlextApiClient(api.url, default_plugins=False) as client:
        result = await client.get("/to", params={"url": f"{other.url}/echo?to=a@b"})
    assert result.is_success
    assert other.hits == {"/echo": 1}


# -- request building, as the server sees it ---------------------------------------------------


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_a_params_string_is_percent_encoded_alike_on_every_transport(
    fault: FaultServer, transport: str
) -> None:
    """A ready-made ``params=`` string with a space, a non-ASCII character and ``#``
    reaches the server percent-encoded (aiohttp and H1Transport wrote the space raw
    into the request line; the ``#`` cut the rest off as a fragment)."""
    async with FlextApiClient(
        fault.url, transport=TRANSPORTS[transport](), default_plugins=False
    ) as client:
        result = await client.get("/echo", params="q=a b&city=Zürich&tag=#1&ok=%2F")
    assert result.is_success
    assert fault.requests_to("/echo")[0].query == "q=a%20b&city=Z%C3%BCrich&tag=%231&ok=%2F"


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("params", ["a=1\r\nX-Evil: 1", "a=1\n", "a=\x00"])
async def test_a_params_string_with_a_control_character_is_refused(
    fault: FaultServer, transport: str, params: str
) -> None:
    """A CR, LF or NUL in a ``params=`` string is INVALID_REQUEST and nothing is sent
    (aiohttp and pyreqwest dropped the CR/LF and sent the rest)."""
    async with FlextApiClient(
        fault.url, transport=TRANSPORTS[transport](), default_plugins=False
    ) as client:
        result = await client.get("/echo", params=params)
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert "params=" in err.message and "X-Evil" not in err.message
    assert fault.requests == []


async def test_params_go_before_the_urls_fragment(fault: FaultServer) -> None:
    """``/echo#top`` with params sends ``?a=1``: after the ``#`` they were never sent."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        result = await client.get("/echo?x=0#top", params={"a": 1})
    assert result.is_success
    assert fault.requests_to("/echo")[0].query == "x=0&a=1"


@pytest.mark.parametrize("url", ["/../admin", "../admin", "/items/../../admin", "/.."])
async def test_a_relative_url_climbing_above_the_base_path_is_refused(
    fault: FaultServer, url: str
) -> None:
    """``..`` segments may not leave the base URL's path (an identifier put into a
    path must not reach ``/admin``): INVALID_REQUEST, nothing sent."""
    async with FlextApiClient(f"{fault.url}/api/v1", default_plugins=False) as client:
        result = await client.get(url)
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert "climbs above" in err.message
    assert fault.requests == []


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_dot_segments_reach_every_transport_resolved(
    fault: FaultServer, transport: str
) -> None:
    """``..`` and ``.`` segments are resolved before sending, base URL or absolute URL
    alike: aiohttp and H1Transport sent them raw, httpx2 resolved them."""
    async with FlextApiClient(
        fault.url, transport=TRANSPORTS[transport](), default_plugins=False
    ) as client:
        joined = await client.get("/items/./../echo", params={"n": 1})
        absolute = await client.get(f"{fault.url}/a/b/../../echo")
    assert joined.is_success and absolute.is_success
    assert [r.path for r in fault.requests] == ["/echo", "/echo"]
