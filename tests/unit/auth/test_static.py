"""BearerAuth, ApiKeyAuth and BasicAuth: one credential per attempt, never shown."""

from __future__ import annotations

import base64

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client.auth import (
    SENSITIVE_EXTENSION,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    SensitiveNames,
    mark_sensitive,
)
from flext_api.transports._mock import MockTransport

SECRET = "tok-Zq8v-secret-value"


def _client(auth: FlextApiPlugin) -> tuple[FlextApiClient, MockTransport]:
    transport = MockTransport(lambda req: HttpResponse(200, content=b"{}"))
    client = FlextApiClient(
        "http://api.test", transport=transport, auth=auth, default_plugins=False
    )
    return client, transport


async def test_bearer_token_is_sent_as_authorization_header() -> None:
    """A fixed bearer token arrives as `Authorization: Bearer <token>`."""
    client, transport = _client(BearerAuth(SECRET))
    assert (await client.get("/x")).is_success
    assert transport.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_bearer_sync_provider_is_asked_on_every_attempt() -> None:
    """A sync provider is called per request, so a rotated token is used at once."""
    tokens = iter(["first-token", "second-token"])
    client, transport = _client(BearerAuth(lambda: next(tokens)))
    await client.get("/a")
    await client.get("/b")
    assert [r.headers["authorization"] for r in transport.requests] == [
        "Bearer first-token",
        "Bearer second-token",
    ]


async def test_bearer_async_provider_is_awaited() -> None:
    """An async provider's token is awaited and sent."""

    async def provider() -> str:
        return "async-token"

    client, transport = _client(BearerAuth(provider))
    await client.get("/x")
    assert transport.requests[0].headers["authorization"] == "Bearer async-token"


async def test_bearer_provider_exception_is_auth_error_without_its_message() -> None:
    """A provider that raises yields AUTH_ERROR naming the type, not the message."""

    def provider() -> str:
        raise RuntimeError(f"vault said {SECRET}")

    client, transport = _client(BearerAuth(provider))
    result = await client.get("/x")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "RuntimeError" in str(result.exception)
    assert SECRET not in str(result.exception)
    assert isinstance(result.exception.__cause__, RuntimeError)  # type: ignore[union-attr]
    assert transport.requests == []


async def test_bearer_provider_flext_error_is_kept() -> None:
    """A provider raising a FlextApiError chose its error: it is returned as is."""

    def provider() -> str:
        raise FlextApiError.from_code(ErrorCode.CONFIG_ERROR, "no token configured")

    client, _ = _client(BearerAuth(provider))
    assert (await client.get("/x")).error_code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize("bad", ["", "line\r\nX-Evil: 1", 42])
async def test_bearer_provider_returning_unusable_token_is_auth_error(bad: object) -> None:
    """A provider returning an empty, non-str or CR/LF token fails without sending."""
    client, transport = _client(BearerAuth(lambda: bad))  # type: ignore[arg-type,return-value]
    result = await client.get("/x")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "X-Evil" not in str(result.exception)
    assert transport.requests == []


@pytest.mark.parametrize(
    ("token", "exc"), [("", ValueError), ("a\nb", ValueError), (b"bytes", TypeError)]
)
def test_bearer_rejects_bad_fixed_token(token: object, exc: type[Exception]) -> None:
    """An empty, CR/LF or non-str fixed token is a programmer error at construction."""
    with pytest.raises(exc) as info:
        BearerAuth(token)  # type: ignore[arg-type]
    assert "a\nb" not in str(info.value)


def test_bearer_repr_hides_token() -> None:
    """repr shows neither a fixed token nor a provider's output."""
    assert SECRET not in repr(BearerAuth(SECRET))
    assert repr(BearerAuth(SECRET)) == "<BearerAuth token=[REDACTED]>"

    def vault() -> str:
        return SECRET

    assert repr(BearerAuth(vault)) == "<BearerAuth provider=vault>"


async def test_auth_does_not_mutate_the_callers_request() -> None:
    """The credential goes on a copy: the request the caller built stays clean."""
    client, transport = _client(BearerAuth(SECRET))
    request = client.build_request("GET", "/x")
    await client.send(request)
    assert "authorization" not in request.headers
    assert "authorization" in transport.requests[0].headers


async def test_auth_marks_the_header_sensitive() -> None:
    """The header carrying the secret is recorded for redaction on the attempt."""
    client, transport = _client(ApiKeyAuth(SECRET, header="X-Tenant-Key"))
    await client.get("/x")
    marked = transport.requests[0].extensions[SENSITIVE_EXTENSION]
    assert marked == SensitiveNames(headers=frozenset({"x-tenant-key"}))


async def test_api_key_defaults_to_x_api_key_header() -> None:
    """Without header= or query=, the key is sent in X-API-Key."""
    client, transport = _client(ApiKeyAuth(SECRET))
    await client.get("/x")
    assert transport.requests[0].headers["x-api-key"] == SECRET


async def test_api_key_in_query_replaces_existing_value_and_is_encoded() -> None:
    """query= appends the key (percent-encoded), replacing a value already there."""
    client, transport = _client(ApiKeyAuth("k y&z", query="key"))
    await client.get("/x", params={"key": "old", "page": 2})
    sent = transport.requests[0]
    assert sent.url == "http://api.test/x?page=2&key=k%20y%26z"
    assert sent.extensions[SENSITIVE_EXTENSION].params == frozenset({"key"})


async def test_api_key_in_query_keeps_fragment_free_url_shape() -> None:
    """A URL without a query gets `?name=value`."""
    client, transport = _client(ApiKeyAuth("abc", query="api_key"))
    await client.get("/x")
    assert transport.requests[0].url == "http://api.test/x?api_key=abc"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"header": "X-Key", "query": "key"},
        {"header": "Bad Header"},
        {"header": ""},
        {"query": ""},
    ],
)
def test_api_key_rejects_bad_placement(kwargs: dict[str, str]) -> None:
    """Both header= and query=, an invalid header name or an empty name: ValueError."""
    with pytest.raises(ValueError):
        ApiKeyAuth("k", **kwargs)


def test_api_key_repr_hides_key() -> None:
    """repr names where the key goes, never the key."""
    assert repr(ApiKeyAuth(SECRET, query="k")) == "<ApiKeyAuth query='k' key=[REDACTED]>"
    assert SECRET not in repr(ApiKeyAuth(SECRET))


async def test_basic_auth_encodes_utf8_credentials() -> None:
    """Basic sends base64(user:password) with UTF-8 bytes (RFC 7617)."""
    client, transport = _client(BasicAuth("zoë", "päss:word"))
    await client.get("/x")
    header = transport.requests[0].headers["authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == "zoë:päss:word"


async def test_basic_auth_allows_empty_password() -> None:
    """An empty password is valid Basic auth (user name only)."""
    client, transport = _client(BasicAuth("alice", ""))
    await client.get("/x")
    assert base64.b64decode(transport.requests[0].headers["authorization"][6:]) == b"alice:"


@pytest.mark.parametrize(
    ("user", "password", "exc"),
    [
        ("a:b", "p", ValueError),
        ("", "p", ValueError),
        ("a", 1, TypeError),
        ("a", "p\n", ValueError),
    ],
)
def test_basic_auth_rejects_bad_credentials(
    user: str, password: object, exc: type[Exception]
) -> None:
    """A ':' in the user, an empty user, a non-str or CR/LF password: construction error."""
    with pytest.raises(exc):
        BasicAuth(user, password)  # type: ignore[arg-type]


def test_basic_auth_repr_hides_password() -> None:
    """repr shows the user name only."""
    assert repr(BasicAuth("alice", SECRET)) == "<BasicAuth username='alice' password=[REDACTED]>"


def test_mark_sensitive_accumulates_names() -> None:
    """Marks from several plugins add up, lower-cased."""
    request = HttpRequest("GET", "http://api.test/")
    mark_sensitive(request, headers=["X-One"])
    mark_sensitive(request, params=["Sig"])
    assert request.extensions[SENSITIVE_EXTENSION] == SensitiveNames(
        frozenset({"x-one"}), frozenset({"sig"})
    )
