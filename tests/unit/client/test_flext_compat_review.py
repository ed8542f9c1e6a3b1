"""Regressions of the FLEXT-compat layer: dict hooks edited in place, dict-client settings."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict  # noqa: UP035 - the guides annotate with typing.Dict

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse, create_flext_api
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client._dict_client import client_from_dict
from flext_api.transports import MockTransport
from tests.servers.httpbin_server import HttpbinServer

SECRET = "s3cr3t-Zq8v-7781"


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, headers={"Content-Type": "application/json"}, content=b"{}")


def _client(plugin: FlextApiPlugin, transport: MockTransport) -> FlextApiClient:
    return FlextApiClient(
        "http://svc", plugins=[plugin], transport=transport, default_plugins=False
    )


class InPlace(FlextApiPlugin):
    """The guides' way: edit the nested dicts of the request config in place."""

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:  # noqa: UP006
        request_config["headers"]["Authorization"] = "Bearer tok"
        request_config["params"]["page"] = "2"
        if "json" in request_config:
            request_config["json"]["added"] = True
        return FlextResult.ok(request_config)


async def test_nested_dicts_edited_in_place_are_sent() -> None:
    """headers/params/json changed in place (not reassigned) reach the transport."""
    transport = MockTransport(_ok)
    async with _client(InPlace(), transport) as client:
        result = await client.post("/items?page=1", json={"original": True})
    assert result.is_success
    (sent,) = transport.requests
    assert sent.url == "http://svc/items?page=2"
    assert sent.headers["Authorization"] == "Bearer tok"
    assert json.loads(sent.content or b"") == {"original": True, "added": True}


async def test_repeated_query_names_survive_an_edit_of_another_param() -> None:
    """?tag=a&tag=b keeps both values when a hook only changes ``page``."""
    transport = MockTransport(_ok)
    async with _client(InPlace(), transport) as client:
        await client.get("/items", params=[("tag", "a"), ("page", "1"), ("tag", "b")])
    (sent,) = transport.requests
    assert sent.url == "http://svc/items?tag=a&page=2&tag=b"


class DropsTag(FlextApiPlugin):
    def before_request(self, request_config: Dict[str, Any]) -> Dict[str, Any]:  # noqa: UP006
        del request_config["params"]["tag"]
        request_config["params"]["new"] = "1"
        return request_config


async def test_a_param_removed_by_the_hook_is_not_sent() -> None:
    """A name deleted from the params dict disappears, every value of it."""
    transport = MockTransport(_ok)
    async with _client(DropsTag(), transport) as client:
        await client.get("/items", params=[("tag", "a"), ("tag", "b"), ("keep", "x")])
    (sent,) = transport.requests
    assert sent.url == "http://svc/items?keep=x&new=1"


def test_settings_with_mixed_key_types_are_a_config_error() -> None:
    """An untyped dict with an int key is a CONFIG_ERROR failure, not a TypeError."""
    result = create_flext_api().flext_api_create_client({1: 2, "nope": 3})  # type: ignore[dict-item]
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert "nope" in (result.error or "")


def test_config_errors_do_not_echo_secret_header_values() -> None:
    """A bad Authorization/Cookie value is named, never shown."""
    for headers in (
        {"Authorization": f"Bearer {SECRET}\r\n"},
        {"Cookie": [SECRET]},
        {"X-API-Key": f"{SECRET}\n"},
    ):
        result = client_from_dict({"headers": headers})
        assert result.error_code is ErrorCode.CONFIG_ERROR, headers
        error = result.exception
        assert error is not None
        assert SECRET not in (result.error or ""), result.error
        assert SECRET not in repr(error.__cause__), error.__cause__


def test_config_errors_do_not_echo_url_credentials() -> None:
    """A secret query parameter of a rejected base_url is masked in the message."""
    result = client_from_dict({"base_url": f"https://h/?token={SECRET}&x=\n"})
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert SECRET not in (result.error or "")


def test_bad_params_are_a_typed_failure() -> None:
    """get(path, params) with a value that is no mapping is INVALID_REQUEST, not a crash."""
    with client_from_dict({"base_url": "http://127.0.0.1:9"}).value as client:
        result = client.get("/x", 5)  # type: ignore[arg-type]
        assert result.error_code is ErrorCode.INVALID_REQUEST
        result = client.get("/x", params=5)  # type: ignore[arg-type]
        assert result.error_code is ErrorCode.INVALID_REQUEST


def test_put_and_patch_take_data_and_json_positionally(httpbin_server: HttpbinServer) -> None:
    """put/patch(path, data, json) as post: requests' shape, the body is sent."""
    settings = {"base_url": httpbin_server.url}
    with create_flext_api().flext_api_create_client(settings).value as client:
        put = client.put("/put", {"f": "1"})
        patch = client.patch("/patch", None, {"j": 2})
        empty = client.post("/post", b"")
    assert put.is_success and put.data["data"]["form"] == {"f": "1"}
    assert patch.is_success and patch.data["data"]["json"] == {"j": 2}
    assert empty.is_success and empty.data["data"]["data"] == ""


def test_many_threads_share_one_dict_client(httpbin_server: HttpbinServer) -> None:
    """64 calls from 16 threads at once: every answer is the caller's own."""
    settings = {"base_url": httpbin_server.url}
    with create_flext_api().flext_api_create_client(settings).value as client:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: client.get("/get", {"i": str(i)}), range(64)))
        client.close()
        client.close()  # twice: a no-op
        after = client.get("/get")
    assert [r.data["data"]["args"]["i"] for r in results] == [str(i) for i in range(64)]
    assert after.error_code is ErrorCode.INVALID_REQUEST
