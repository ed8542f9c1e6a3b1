"""The client against the third-party httpbin app served locally: bodies, headers, redirects."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ErrorCode
from flext_api.client import FlextApiClient
from tests.servers.httpbin_server import HttpbinServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aiohttp_path")]


def _client(server: HttpbinServer, **kwargs: Any) -> FlextApiClient:
    return FlextApiClient(server.url, default_plugins=False, **kwargs)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_json_round_trips(httpbin_server: HttpbinServer, method: str) -> None:
    """A JSON body arrives as sent, with its content type, for every method with a body."""
    payload = {"name": "flext", "n": [1, 2, 3], "nested": {"ok": True}}
    async with _client(httpbin_server) as client:
        result = await client.request(method, f"/{method.lower()}", json=payload)
    body = result.value.json()
    assert body["json"] == payload
    assert body["headers"]["Content-Type"] == "application/json"


async def test_form_round_trips(httpbin_server: HttpbinServer) -> None:
    """data= as a mapping is sent url-encoded and read back as a form."""
    async with _client(httpbin_server) as client:
        result = await client.post("/post", data={"a": "1", "b": ["x", "y"]})
    body = result.value.json()
    assert body["form"] == {"a": "1", "b": ["x", "y"]}
    assert body["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_multipart_round_trips(httpbin_server: HttpbinServer) -> None:
    """files= with form fields arrives as multipart: files and fields intact."""
    async with _client(httpbin_server) as client:
        result = await client.post(
            "/post",
            data={"field": "value"},
            files={"upload": ("report.txt", b"hello\r\nworld", "text/plain"), "raw": b"\x00\x01"},
        )
    body = result.value.json()
    assert body["form"] == {"field": "value"}
    assert body["files"]["upload"] == "hello\r\nworld"
    assert body["files"]["raw"] == "\x00\x01"
    assert body["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


async def test_raw_bytes_round_trip(httpbin_server: HttpbinServer) -> None:
    """content= bytes are sent untouched."""
    data = bytes(range(256)) * 4
    async with _client(httpbin_server) as client:
        result = await client.put(
            "/anything", content=data, headers={"Content-Type": "application/octet-stream"}
        )
    body = result.value.json()
    assert body["data"].startswith("data:application/octet-stream;base64,")
    assert int(body["headers"]["Content-Length"]) == len(data)


async def test_headers_and_params_arrive_as_sent(httpbin_server: HttpbinServer) -> None:
    """Client and request headers are merged (request wins); params are encoded, lists repeat."""
    async with _client(httpbin_server, headers={"X-Client": "c", "X-Both": "client"}) as client:
        result = await client.get(
            "/get",
            params={"q": "a b&c", "tags": ["x", "y"], "flag": True, "none": None},
            headers={"X-Both": "request", "X-Trace": "t-1"},
        )
    body = result.value.json()
    assert body["args"] == {"q": "a b&c", "tags": ["x", "y"], "flag": "true"}
    assert body["headers"]["X-Client"] == "c"
    assert body["headers"]["X-Both"] == "request"
    assert body["headers"]["X-Trace"] == "t-1"
    assert body["headers"]["User-Agent"].startswith("flext-api/")


async def test_redirects_are_followed(httpbin_server: HttpbinServer) -> None:
    """A chain of redirects ends at the final response, whose URL is the last hop."""
    async with _client(httpbin_server) as client:
        result = await client.get("/redirect/3")
    assert result.value.status_code == 200
    assert result.value.url.endswith("/get")


async def test_redirect_limit(httpbin_server: HttpbinServer) -> None:
    """More hops than max_redirects is a TOO_MANY_REDIRECTS failure carrying the last response."""
    from flext_api import ClientConfig

    async with _client(httpbin_server, config=ClientConfig(max_redirects=2)) as client:
        result = await client.get("/redirect/5")
    assert result.error_code is ErrorCode.TOO_MANY_REDIRECTS
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.status_code == 302


async def test_redirects_can_be_turned_off_per_request(httpbin_server: HttpbinServer) -> None:
    """follow_redirects=False returns the 302 itself."""
    async with _client(httpbin_server) as client:
        result = await client.get("/redirect/1", follow_redirects=False)
    assert result.value.status_code == 302


async def test_authorization_dropped_on_cross_origin_redirect(
    httpbin_server: HttpbinServer,
) -> None:
    """Authorization is kept on a same-origin hop and dropped when the origin changes."""
    other_origin = httpbin_server.url.replace("127.0.0.1", "localhost") + "/headers"
    auth = {"Authorization": "Bearer secret-token"}
    async with _client(httpbin_server) as client:
        same = await client.get("/redirect-to", params={"url": "/headers"}, headers=auth)
        cross = await client.get("/redirect-to", params={"url": other_origin}, headers=auth)
    assert same.value.json()["headers"]["Authorization"] == "Bearer secret-token"
    assert "Authorization" not in cross.value.json()["headers"]


async def test_303_after_post_becomes_get_without_body(httpbin_server: HttpbinServer) -> None:
    """A 303 after POST is followed with a body-less GET."""
    async with _client(httpbin_server) as client:
        result = await client.post(
            "/redirect-to", params={"url": "/anything", "status_code": 303}, json={"a": 1}
        )
    body = result.value.json()
    assert body["method"] == "GET"
    assert body["data"] == ""


async def test_request_without_user_agent_sends_none(httpbin_server: HttpbinServer) -> None:
    """A request built without User-Agent does not get aiohttp's own one."""
    async with _client(httpbin_server) as client:
        request = client.build_request("GET", "/headers")
        request.headers.remove("User-Agent")
        result = await client.send(request)
    assert "User-Agent" not in result.value.json()["headers"]


async def test_credentials_in_url_become_basic_auth(httpbin_server: HttpbinServer) -> None:
    """``http://user:pass@host`` sends Basic credentials, as aiohttp does."""
    url = httpbin_server.url.replace("http://", "http://user:pa%20ss@")
    async with FlextApiClient(url, default_plugins=False) as client:
        result = await client.get("/basic-auth/user/pa ss")
    assert result.value.json() == {"authenticated": True, "user": "user"}
