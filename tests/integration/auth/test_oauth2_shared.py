"""One OAuth2ClientCredentials shared by several clients, against a real token endpoint.

The token endpoint is an aiohttp server on 127.0.0.1 that counts requests and is held
or made to fail by the test (events, not sleeps).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials

pytestmark = pytest.mark.integration


@dataclass
class Idp:
    """Token endpoint + resource. ``hold`` keeps token requests waiting; ``fail`` 503s."""

    url: str = ""
    token_requests: int = 0
    fail: bool = False
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    """The running server."""
    state = Idp()

    async def token(request: web.Request) -> web.Response:
        state.token_requests += 1
        state.arrived.set()
        if state.hold is not None:
            await state.hold.wait()
        if state.fail:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        return web.json_response(
            {"access_token": f"token-{state.token_requests}", "token_type": "Bearer"}
        )

    async def resource(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/resource", resource)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    if state.hold is not None:
        state.hold.set()
    await runner.cleanup()


async def test_closing_one_client_leaves_the_shared_token_request_to_the_other(
    idp: Idp,
) -> None:
    """Client A closing while client B's callers wait for the shared token request does
    not fail B's calls: the request is cancelled only when its last client closes."""
    idp.hold = asyncio.Event()
    auth = OAuth2ClientCredentials(f"{idp.url}/token", "svc", "s3cret")
    first = FlextApiClient(idp.url, auth=auth, default_plugins=False)
    async with FlextApiClient(idp.url, auth=auth, default_plugins=False) as second:
        await first.open()
        waiting = asyncio.create_task(second.get("/resource"))
        await idp.arrived.wait()
        await first.aclose()
        idp.hold.set()
        result = await waiting
    assert result.value.json() == {"authorization": "Bearer token-1"}
    assert idp.token_requests == 1


async def test_closing_the_last_client_still_cancels_the_token_request(idp: Idp) -> None:
    """With no other client open, closing ends the wait with AUTH_ERROR, not a hang."""
    idp.hold = asyncio.Event()
    auth = OAuth2ClientCredentials(f"{idp.url}/token", "svc", "s3cret")
    client = FlextApiClient(idp.url, auth=auth, default_plugins=False)
    await client.open()
    waiting = asyncio.create_task(client.get("/resource"))
    await idp.arrived.wait()
    await client.aclose()
    result = await waiting
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "cancelled" in str(result.exception)


async def test_a_shared_failure_is_not_kept_the_next_call_asks_again(idp: Idp) -> None:
    """20 concurrent callers against a failing endpoint make one request and all get
    AUTH_ERROR; once it recovers, the next call fetches a token (nothing is poisoned)."""
    idp.fail, idp.hold = True, asyncio.Event()
    auth = OAuth2ClientCredentials(f"{idp.url}/token", "svc", "s3cret")
    async with FlextApiClient(idp.url, auth=auth, default_plugins=False) as client:
        calls = [asyncio.create_task(client.get("/resource")) for _ in range(20)]
        await idp.arrived.wait()
        idp.hold.set()
        failed = await asyncio.gather(*calls)
        idp.fail = False
        recovered = await client.get("/resource")
    assert {r.error_code for r in failed} == {ErrorCode.AUTH_ERROR}
    assert all(r.exception is not None and r.exception.details["status"] == 503 for r in failed)
    assert recovered.value.json() == {"authorization": "Bearer token-2"}
    assert idp.token_requests == 2
