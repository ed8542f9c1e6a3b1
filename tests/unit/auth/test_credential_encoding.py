"""Credentials that cannot travel as they are: typed errors, never a transport's guess.

A header value outside ASCII reached the server as UTF-8 on aiohttp and pyreqwest,
Latin-1 on H1Transport, and failed with an UNEXPECTED_ERROR quoting part of the token on
httpx2. Such a bearer token or header API key is now refused before anything is sent;
where the secret is encoded anyway (Basic, a query parameter, the token request's form)
it is still accepted. A token provider is held to the same: its exception's message is
never shown, and it cannot make a call outlive the call's deadline.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote, quote_plus

import orjson
import pytest

from flext_api import ErrorCode, HttpResponse, TimeoutConfig
from flext_api._errors import AuthError
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client.auth import ApiKeyAuth, BasicAuth, BearerAuth
from flext_api.client.auth._oauth2_token import parse_token_response
from flext_api.transports._mock import MockTransport

NON_ASCII = ["tök-Zq8v", "a\u2028b-Zq8v", "\x85-Zq8v", "a\u010d\u010aX-Evil: 1"]


def _client(auth: FlextApiPlugin) -> tuple[FlextApiClient, MockTransport]:
    transport = MockTransport(lambda req: HttpResponse(200, content=b"{}"))
    client = FlextApiClient(
        "http://api.test", transport=transport, auth=auth, default_plugins=False
    )
    return client, transport


@pytest.mark.parametrize("token", NON_ASCII)
def test_non_ascii_bearer_token_is_refused_without_showing_it(token: str) -> None:
    """BearerAuth('tök') is a ValueError naming the argument, not the value."""
    with pytest.raises(ValueError, match="bearer token contains a non-ASCII") as info:
        BearerAuth(token)
    assert "Zq8v" not in str(info.value)


@pytest.mark.parametrize("token", NON_ASCII)
async def test_non_ascii_token_from_provider_is_auth_error_and_nothing_is_sent(
    token: str,
) -> None:
    """A provider returning a non-ASCII token gives AUTH_ERROR; no request leaves."""
    client, transport = _client(BearerAuth(lambda: token))
    result = await client.get("/x")
    err = result.exception
    assert err is not None and err.code is ErrorCode.AUTH_ERROR
    assert "non-ASCII" in err.message
    assert "Zq8v" not in str(err)
    assert transport.requests == []


@pytest.mark.parametrize("key", NON_ASCII)
def test_non_ascii_api_key_in_a_header_is_refused(key: str) -> None:
    """ApiKeyAuth('kéy') (header) is a ValueError that does not show the key."""
    with pytest.raises(ValueError, match="API key contains a non-ASCII") as info:
        ApiKeyAuth(key, header="X-Tenant-Key")
    assert "Zq8v" not in str(info.value)


async def test_non_ascii_api_key_in_the_query_is_percent_encoded() -> None:
    """In a query parameter the key is UTF-8 percent-encoded, so it is accepted."""
    client, transport = _client(ApiKeyAuth("kéy", query="api_key"))
    assert (await client.get("/x")).is_success
    assert transport.requests[0].url.endswith("?api_key=k%C3%A9y")


async def test_non_ascii_basic_credentials_are_still_utf8() -> None:
    """Basic credentials are base64 of UTF-8 (RFC 7617): non-ASCII stays allowed."""
    client, transport = _client(BasicAuth("jürgen", "pässwörd"))
    assert (await client.get("/x")).is_success
    header = transport.requests[0].headers["authorization"]
    assert base64.b64decode(header[6:]).decode() == "jürgen:pässwörd"


SECRET = "s3cret+/=:% ü"


def _parse(status: int, body: object, headers: dict[str, str] | None = None) -> object:
    return parse_token_response(
        HttpResponse(status, headers=headers, content=orjson.dumps(body)),
        now=0.0,
        leeway=30.0,
        token_url="https://idp.test/token",
        client_id="svc",
        secret=SECRET,
    )


@pytest.mark.parametrize("token", NON_ASCII)
def test_non_ascii_access_token_is_auth_error(token: str) -> None:
    """A token endpoint handing out a non-ASCII access_token is refused (AUTH_ERROR)."""
    with pytest.raises(AuthError, match="no usable access_token") as info:
        _parse(200, {"access_token": token, "token_type": "Bearer"})
    assert info.value.code is ErrorCode.AUTH_ERROR
    assert "Zq8v" not in str(info.value)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_with_a_token_in_its_body_is_not_a_token(status: int) -> None:
    """A 3xx is never a token answer, whatever its body says."""
    body = {"access_token": "foreign", "token_type": "Bearer"}
    with pytest.raises(AuthError, match="redirect") as info:
        _parse(status, body, {"location": "https://evil.test/t?client_secret=x"})
    assert info.value.details["status"] == status
    assert "client_secret=x" not in str(info.value)


@pytest.mark.parametrize(
    "spelling", [SECRET, quote_plus(SECRET), quote(SECRET, safe="")], ids=["raw", "form", "url"]
)
def test_secret_echoed_form_encoded_is_scrubbed(spelling: str) -> None:
    """A server quoting the secret as it was sent (form-encoded) does not leak it."""
    refusal = {"error": "invalid_client", "error_description": f"bad secret {spelling}!"}
    with pytest.raises(AuthError) as info:
        _parse(401, refusal)
    text = f"{info.value} {info.value.details!r}"
    assert spelling not in text
    assert "bad secret [REDACTED]!" in text


@pytest.mark.parametrize("kind", [ValueError, TypeError, RuntimeError])
async def test_provider_error_message_quoting_the_token_is_not_shown(
    kind: type[Exception],
) -> None:
    """A provider raising ValueError('... <token>') gives AUTH_ERROR naming the type
    only, like any other exception (its message could quote the token)."""

    def provider() -> str:
        raise kind("rejected token tok-Zq8v-secret")

    client, transport = _client(BearerAuth(provider))
    result = await client.get("/x")
    err = result.exception
    assert err is not None and err.code is ErrorCode.AUTH_ERROR
    assert err.message == f"bearer token provider raised {kind.__name__}"
    assert "Zq8v" not in f"{err} {err!r} {err.details!r}"
    assert transport.requests == []


async def test_hanging_provider_is_bounded_by_the_call_deadline() -> None:
    """An async provider that never answers ends with DEADLINE_EXCEEDED when the call's
    total deadline passes (it hung forever before); its coroutine is cancelled."""
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def provider() -> str:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    transport = MockTransport(lambda req: HttpResponse(200, content=b"{}"))
    async with FlextApiClient(
        "http://api.test",
        transport=transport,
        auth=BearerAuth(provider),
        default_plugins=False,
        timeout=TimeoutConfig(total=0.01),
    ) as client:
        result = await client.get("/x")
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    assert result.exception is not None and result.exception.request is not None
    assert transport.requests == []
    if entered.is_set():  # a provider cancelled before its first step never runs at all
        await cancelled.wait()


async def test_shared_future_from_provider_is_not_cancelled_at_the_deadline() -> None:
    """A provider handing out a future it shares keeps it: only the caller stops waiting."""
    shared: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    transport = MockTransport(lambda req: HttpResponse(200, content=b"{}"))
    async with FlextApiClient(
        "http://api.test",
        transport=transport,
        auth=BearerAuth(lambda: shared),
        default_plugins=False,
    ) as client:
        late = await client.get("/x", timeout=TimeoutConfig(total=0.01))
        assert late.error_code is ErrorCode.DEADLINE_EXCEEDED
        assert not shared.cancelled()
        shared.set_result("rotated-token")
        assert (await client.get("/x")).is_success
    assert transport.requests[0].headers["authorization"] == "Bearer rotated-token"
