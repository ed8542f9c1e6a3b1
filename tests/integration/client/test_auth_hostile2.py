"""Credentials and a redirect whose ``Location`` parsers read as different hosts.

Two aiohttp servers on 127.0.0.1 are two origins: the API the caller named, and
``other``. The API answers 302 to ``http://<other>\\@<api>/x``: RFC 3986 (``urlsplit``,
the redirect stage's origin check) reads host ``api``, a WHATWG parser (pyreqwest's)
reads host ``other``. pyreqwest sent the bearer token, a marked API-key header and the
cookie to ``other``; httpx2 followed to ``api`` with the userinfo as Basic credentials.
Every transport now refuses the hop, as aiohttp and H1Transport already did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.auth import ApiKeyAuth, BearerAuth
from flext_api.transports import Transport
from tests.integration.transports._transports import TRANSPORTS

pytestmark = pytest.mark.integration

TOKEN = "t0ken-secret"
KEY = "k3y-secret"
COOKIE = "session=c00kie-secret"


@dataclass
class Origin:
    """One aiohttp server on 127.0.0.1 (port chosen by the OS); records what it got."""

    url: str = ""
    port: int = 0
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


async def _serve(origin: Origin, handler: Callable[[web.Request], web.Response]) -> web.AppRunner:
    async def record(request: web.Request) -> web.Response:
        origin.seen.append((request.path_qs, dict(request.headers)))
        return handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin.port = runner.addresses[0][1]
    origin.url = f"http://127.0.0.1:{origin.port}"
    return runner


@pytest.fixture
async def other() -> AsyncIterator[Origin]:
    """The origin a redirect must not hand credentials to: answers 200 to anything."""
    origin = Origin()
    runner = await _serve(origin, lambda _request: web.Response(text="other"))
    yield origin
    await runner.cleanup()


@pytest.fixture
async def api(other: Origin) -> AsyncIterator[Origin]:
    """The caller's origin: ``/backslash`` answers 302 to ``http://<other>\\@<api>/x``,
    ``/away`` 302 to ``<other>/landing``."""
    origin = Origin()

    def handler(request: web.Request) -> web.Response:
        if request.path == "/backslash":
            target = f"http://127.0.0.1:{other.port}\\@127.0.0.1:{origin.port}/x"
            return web.Response(status=302, headers={"Location": target})
        if request.path == "/away":
            return web.Response(status=302, headers={"Location": f"{other.url}/landing"})
        return web.Response(text="api")

    runner = await _serve(origin, handler)
    yield origin
    await runner.cleanup()


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_redirect_with_a_backslash_in_its_authority_is_refused(
    api: Origin, other: Origin, transport: str
) -> None:
    """``Location: http://other\\@api/x`` is INVALID_REQUEST on every transport: no
    second request is sent, so neither origin gets the credentials again."""
    make: Callable[[], Transport] = TRANSPORTS[transport]
    async with FlextApiClient(
        api.url,
        transport=make(),
        auth=BearerAuth(TOKEN),
        headers={"Cookie": COOKIE},
        default_plugins=False,
    ) as client:
        result = await client.get("/backslash")
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert "backslash" in err.message
    assert other.seen == []
    assert [path for path, _ in api.seen] == ["/backslash"]


async def test_marked_api_key_header_does_not_reach_the_other_origin(
    api: Origin, other: Origin
) -> None:
    """The pyreqwest case with an ``ApiKeyAuth(header="X-Tenant")`` key: refused, and the
    error message shows neither the key nor the Location's userinfo."""
    make = TRANSPORTS["pyreqwest"]
    async with FlextApiClient(
        api.url, transport=make(), auth=ApiKeyAuth(KEY, header="X-Tenant"), default_plugins=False
    ) as client:
        result = await client.get("/backslash")
    err = result.exception
    assert err is not None and err.code is ErrorCode.INVALID_REQUEST
    assert KEY not in str(err) and f"{other.port}\\" not in str(err)
    assert other.seen == []


async def test_ordinary_cross_origin_redirect_still_drops_credentials(
    api: Origin, other: Origin
) -> None:
    """The check refuses only the ambiguous authority: a plain 302 to ``other`` is
    followed, without the token, the marked key or the cookie."""
    make = TRANSPORTS["pyreqwest"]
    async with FlextApiClient(
        api.url,
        transport=make(),
        auth=ApiKeyAuth(KEY, header="X-Tenant"),
        headers={"Authorization": f"Bearer {TOKEN}", "Cookie": COOKIE},
        default_plugins=False,
    ) as client:
        result = await client.get("/away")
    assert result.is_success and result.value.text == "other"
    [(path, headers)] = other.seen
    assert path == "/landing"
    sent = {name.lower() for name in headers}
    assert sent.isdisjoint({"authorization", "x-tenant", "cookie"})
