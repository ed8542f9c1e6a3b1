"""OAuth2ClientCredentials against the fault server's real token endpoint and resource."""

from __future__ import annotations

import asyncio
import base64

import pytest

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.auth import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer
from tests.servers.fault_routes_auth import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.unit.observability.logcapture import LogCapture

pytestmark = pytest.mark.integration


def _oauth(
    fault: FaultServer, tenant: str, query: str = "", **kwargs: object
) -> OAuth2ClientCredentials:
    url = f"{fault.url}/oauth/{tenant}/token" + (f"?{query}" if query else "")
    return OAuth2ClientCredentials(url, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, **kwargs)  # type: ignore[arg-type]


def _client(fault: FaultServer, auth: object) -> FlextApiClient:
    return FlextApiClient(fault.url, auth=auth, default_plugins=False)  # type: ignore[arg-type]


async def test_fifty_concurrent_first_requests_make_one_token_request(fault: FaultServer) -> None:
    """50 concurrent first calls: exactly 1 token request reaches the endpoint."""
    async with _client(fault, _oauth(fault, "t50", "delay=0.05")) as client:
        results = await asyncio.gather(*(client.get("/oauth/t50/protected") for _ in range(50)))
    assert all(r.is_success for r in results), [r.error for r in results if r.is_failure]
    assert fault.hits("/oauth/t50/token") == 1
    assert fault.hits("/oauth/t50/protected") == 50


async def test_expired_token_is_refreshed(fault: FaultServer) -> None:
    """Past expires_in - leeway (fake clock), the next call fetches a new token."""
    clock = FakeClock()
    async with _client(
        fault, _oauth(fault, "texp", "expires_in=60", clock=clock, leeway=0)
    ) as client:
        first = await client.get("/oauth/texp/protected")
        clock.advance(61)
        second = await client.get("/oauth/texp/protected")
    assert first.value.json()["token"] == 1
    assert second.value.json()["token"] == 2
    assert fault.hits("/oauth/texp/token") == 2


async def test_revoked_token_gets_one_refresh_and_one_replay(fault: FaultServer) -> None:
    """A 401 from the resource triggers one token refresh and one replay."""
    async with _client(fault, _oauth(fault, "t401")) as client:
        assert (await client.get("/oauth/t401/protected")).is_success
        assert (await client.post("/oauth/t401/revoke")).value.json() == {"revoked": True}
        result = await client.put("/oauth/t401/protected", json={"v": 1})
    assert result.value.json() == {"ok": True, "token": 2, "method": "PUT"}
    assert fault.hits("/oauth/t401/token") == 2
    assert fault.hits("/oauth/t401/protected") == 3


async def test_client_secret_in_body_is_accepted(fault: FaultServer) -> None:
    """auth_method='body' authenticates with the form fields instead of Basic."""
    async with _client(fault, _oauth(fault, "tbody", auth_method="body")) as client:
        assert (await client.get("/oauth/tbody/protected")).is_success
    token_request = fault.requests_to("/oauth/tbody/token")[0]
    assert "authorization" not in token_request.headers


async def test_scopes_are_granted(fault: FaultServer) -> None:
    """Requested scopes reach the endpoint and come back on the token."""
    plugin = _oauth(fault, "tscope", scopes=["read", "write"])
    token = await plugin.token()
    assert token.value.scope == "read write"


async def test_refusing_endpoint_gives_clear_auth_error_without_secret(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """A refusal is AUTH_ERROR with status and OAuth error; the secret is nowhere."""
    plugin = _oauth(fault, "tref", "refuse=unauthorized_client")
    async with _client(fault, plugin) as client:
        result = await client.get("/oauth/tref/protected")
    err = result.exception
    assert err is not None and err.code is ErrorCode.AUTH_ERROR
    assert "HTTP 400: unauthorized_client (refused on request for tenant tref)" in err.message
    assert fault.hits("/oauth/tref/protected") == 0
    encoded = base64.b64encode(OAUTH_CLIENT_SECRET.encode()).decode()
    for text in (str(err), repr(err), repr(err.details), repr(plugin), json_logs.text):
        assert OAUTH_CLIENT_SECRET not in text
        assert encoded not in text


async def test_wrong_secret_is_invalid_client(fault: FaultServer) -> None:
    """Wrong credentials: the endpoint's 401 invalid_client becomes AUTH_ERROR."""
    plugin = OAuth2ClientCredentials(
        f"{fault.url}/oauth/tbad/token", OAUTH_CLIENT_ID, "wrong-secret-value"
    )
    async with _client(fault, plugin) as client:
        result = await client.get("/oauth/tbad/protected")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "HTTP 401: invalid_client" in str(result.exception)
    assert "wrong-secret-value" not in str(result.exception)


async def test_unreachable_endpoint_is_auth_error() -> None:
    """A closed port for the token endpoint is AUTH_ERROR with the cause's code."""
    plugin = OAuth2ClientCredentials("http://127.0.0.1:1/token", "id", "secret-value")
    async with FlextApiClient("http://127.0.0.1:1", auth=plugin, default_plugins=False) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert result.exception is not None
    assert result.exception.details["cause"] == ErrorCode.CONNECT_ERROR.value


async def test_static_auth_plugins_reach_the_server(fault: FaultServer) -> None:
    """Bearer, API-key (header and query) and Basic credentials arrive as sent."""
    plugins: list[object] = [
        BearerAuth("b-token"),
        ApiKeyAuth("k1"),
        ApiKeyAuth("k2", query="api_key"),
        BasicAuth("u", "p"),
    ]
    for plugin in plugins:
        async with _client(fault, plugin) as client:
            assert (await client.get("/echo")).is_success
    sent = fault.requests_to("/echo")
    assert sent[0].headers["authorization"] == "Bearer b-token"
    assert sent[1].headers["x-api-key"] == "k1"
    assert sent[2].query == "api_key=k2"
    assert sent[3].headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


async def test_the_timeout_bounds_the_whole_token_request(fault: FaultServer) -> None:
    """A token endpoint that answers at once and then drips its body (each byte well
    within the timeout, the whole far past it) fails with the deadline as its cause,
    not after the whole body."""
    url = f"{fault.url}/slow-body?chunks=100&interval=0.1"
    auth = OAuth2ClientCredentials(url, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, timeout=0.5)
    result = await auth.token()
    error = result.exception
    assert error is not None and error.code is ErrorCode.AUTH_ERROR
    assert error.details["cause"] == ErrorCode.DEADLINE_EXCEEDED.value
