"""A URL is absolute only when it starts with a scheme: "://" later on is data."""

from __future__ import annotations

import pytest

from flext_api._errors import InvalidRequestError
from flext_api.client import FlextApiClient, FlextApiSyncClient
from flext_api.client._request import build_url, is_absolute_url
from tests.servers.httpbin_server import HttpbinServer


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example/x",
        "https://api.example",
        "HTTPS://api.example/x",
        "service://users/x",
        "svn+ssh://host/repo",
        "a.b-c://host",
    ],
)
def test_a_url_starting_with_a_scheme_is_absolute(url: str) -> None:
    """scheme "://" at the start (RFC 3986 §3.1) makes a URL absolute, whatever the scheme."""
    assert is_absolute_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "/go?to=http://x.example",
        "go?to=http://x.example",
        "/redirect/http://x.example",
        "items#http://x.example",
        "1http://x.example",
        "-x://host",
        "//host/path",
        "mailto:someone@example.org",
        "",
    ],
)
def test_a_url_holding_scheme_slashes_later_is_relative(url: str) -> None:
    """A "://" that does not follow a leading scheme does not make a URL absolute."""
    assert not is_absolute_url(url)


def test_a_query_holding_a_url_is_joined_to_the_base() -> None:
    """A path whose query holds a URL is a path on the base URL, encoded as any other."""
    built = build_url("http://api.example/v1", "/go?to=http://x.example/a b", None)
    assert built == "http://api.example/v1/go?to=http://x.example/a%20b"


def test_a_relative_path_holding_a_url_without_a_base_is_refused_as_relative() -> None:
    """Without a base URL, such a path is refused for lacking one, not for its scheme."""
    with pytest.raises(InvalidRequestError, match="needs a base_url"):
        build_url(None, "search?q=http://x.example", None)


@pytest.mark.integration
async def test_get_with_a_url_in_the_query_reaches_the_base_server(
    httpbin_server: HttpbinServer,
) -> None:
    """client.get("/get?to=http://...") is sent to the base server with the query intact."""
    async with FlextApiClient(httpbin_server.url, default_plugins=False) as client:
        result = await client.get("/get?to=http://x.example/path&n=1")
    assert result.is_success, result
    assert result.value.json()["args"] == {"to": "http://x.example/path", "n": "1"}


@pytest.mark.integration
async def test_a_path_without_slash_holding_a_url_reaches_the_base_server(
    httpbin_server: HttpbinServer,
) -> None:
    """A relative path without a leading "/" and a URL in its query is joined to the base."""
    async with FlextApiClient(httpbin_server.url, default_plugins=False) as client:
        result = await client.get("anything/next?u=https://x.example/")
    assert result.is_success, result
    assert result.value.json()["url"].endswith("/anything/next?u=https://x.example/")


@pytest.mark.integration
def test_the_sync_client_joins_a_path_holding_a_url(httpbin_server: HttpbinServer) -> None:
    """FlextApiSyncClient sends such a path to its base server too."""
    with FlextApiSyncClient(httpbin_server.url, default_plugins=False) as client:
        result = client.get("/get?from=http://x.example/")
    assert result.is_success, result
    assert result.value.json()["args"] == {"from": "http://x.example/"}


@pytest.mark.integration
async def test_an_absolute_url_with_an_upper_case_scheme_is_still_absolute(
    httpbin_server: HttpbinServer,
) -> None:
    """An "HTTP://host/..." URL is absolute: it is not joined to the base URL."""
    # Port 9 (discard) on 127.0.0.1: were the URL joined to it, nothing leaves the host.
    async with FlextApiClient("http://127.0.0.1:9", default_plugins=False) as client:
        result = await client.get("HTTP" + httpbin_server.url[4:] + "/get?x=1")
    assert result.is_success, result
    assert result.value.json()["args"] == {"x": "1"}


@pytest.mark.parametrize("url", [" http://x.example/a", "items ", " /items"])
def test_a_url_with_surrounding_whitespace_is_refused(url: str) -> None:
    """A URL read from a file with a stray space was joined as a path holding ``%20``
    (``base/%20http://x.example/a``); it is refused, naming the problem."""
    with pytest.raises(InvalidRequestError, match="whitespace"):
        build_url("http://base.example", url, None)
