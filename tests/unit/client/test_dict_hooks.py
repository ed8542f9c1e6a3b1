"""Dict-style plugin hooks (the FLEXT guides' shape), unit-tested on MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Dict  # noqa: UP035 - the guides annotate with typing.Dict

from flext_api import FlextResult, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client._dict_hooks import MAX_DICT_RETRIES, response_view, uses_dict_hooks
from flext_api.transports import MockTransport


def _client(plugin: FlextApiPlugin, transport: MockTransport) -> FlextApiClient:
    return FlextApiClient(
        "http://svc", plugins=[plugin], transport=transport, default_plugins=False
    )


def _echo(request: HttpRequest) -> HttpResponse:
    body = {"method": request.method, "url": request.url, "headers": dict(request.headers)}
    if request.content:
        body["json"] = json.loads(request.content)
    return HttpResponse(
        200, headers={"Content-Type": "application/json"}, content=json.dumps(body).encode()
    )


class Rewriter(FlextApiPlugin):
    def before_request(self, request_config: Dict[str, Any]) -> Dict[str, Any]:  # noqa: UP006
        request_config["method"] = "put"
        request_config["params"] = {"page": "2"}
        request_config["headers"] = {"X-Tenant": "t1"}
        request_config["json"] = {"edited": True}
        return request_config


async def test_changes_to_the_request_dict_are_sent() -> None:
    """method, params, headers and json edited in the dict reach the transport."""
    transport = MockTransport(_echo)
    async with _client(Rewriter(), transport) as client:
        result = await client.post("/items?page=1", json={"original": True})
    (sent,) = transport.requests
    assert (sent.method, sent.url) == ("PUT", "http://svc/items?page=2")
    assert sent.headers["X-Tenant"] == "t1"
    assert json.loads(sent.content or b"") == {"edited": True}
    assert result.is_success


class Passive(FlextApiPlugin):
    def before_request(self, request_config: Mapping[str, Any]) -> None:
        return None


async def test_a_hook_returning_none_changes_nothing() -> None:
    """A before_request returning None sends the request as it was."""
    transport = MockTransport(_echo)
    async with _client(Passive(), transport) as client:
        await client.get("/a")
    assert transport.requests[0].url == "http://svc/a"


def test_style_is_read_from_signatures() -> None:
    """One-argument after_response or dict annotations mark the dict style; others do not."""

    class Modern(FlextApiPlugin):
        def before_request(self, request: HttpRequest) -> None:
            return None

    class Unannotated(FlextApiPlugin):
        def before_request(self, request):  # type: ignore[no-untyped-def]
            return request

    class Unresolvable(FlextApiPlugin):
        def before_request(self, request: Undefined) -> None:  # type: ignore[name-defined]  # noqa: F821
            return None

    class Bare(FlextApiPlugin):
        def before_request() -> None:  # type: ignore[misc]
            return None

    assert uses_dict_hooks(Passive) and uses_dict_hooks(Rewriter)
    assert not uses_dict_hooks(Modern)
    assert not uses_dict_hooks(Unannotated)
    assert not uses_dict_hooks(Unresolvable)
    assert not uses_dict_hooks(Bare)


class AsyncStopper(FlextApiPlugin):
    async def after_response(self, response: dict[str, Any]) -> FlextResult[dict[str, Any]]:
        return FlextResult.fail(f"refused {response['status_code']}")


async def test_async_hook_failure_stops_the_call() -> None:
    """An async after_response returning a failure makes the call that failure."""
    async with _client(AsyncStopper(), MockTransport(_echo)) as client:
        result = await client.get("/a")
    assert result.error == "refused 200"
    assert result.exception is not None and result.exception.request is not None


class AlwaysRetry(FlextApiPlugin):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def after_response(self, response: dict[str, Any]) -> dict[str, Any]:
        count = response.get("_n", 0)
        self.seen.append(count)
        response["_n"] = count + 1
        response["_should_retry"] = True
        return response


async def test_retry_requests_are_capped() -> None:
    """A plugin that always asks for a resend gets MAX_DICT_RETRIES of them, then stops."""
    plugin = AlwaysRetry()
    transport = MockTransport(_echo)
    async with _client(plugin, transport) as client:
        result = await client.get("/a")
    assert len(transport.requests) == MAX_DICT_RETRIES + 1
    assert plugin.seen == list(range(MAX_DICT_RETRIES + 1))
    assert result.is_success


async def test_a_one_shot_body_is_never_resent() -> None:
    """A streamed request body cannot be replayed: _should_retry is not honoured."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    transport = MockTransport(_echo)
    async with _client(AlwaysRetry(), transport) as client:
        await client.post("/a", content=body())
    assert len(transport.requests) == 1


class Recorder(FlextApiPlugin):
    def __init__(self) -> None:
        self.views: list[dict[str, Any]] = []

    def after_response(self, response: dict[str, Any]) -> FlextResult[dict[str, Any]]:
        self.views.append(response)
        return FlextResult.ok(response)


async def test_failures_without_a_response_reach_after_response() -> None:
    """A connection failure is shown with status_code 0, error and error_code."""

    def refuse(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError("refused")

    plugin = Recorder()
    async with _client(plugin, MockTransport(refuse)) as client:
        result = await client.get("/a")
    (view,) = plugin.views
    assert result.is_failure
    assert (view["status_code"], view["error_code"]) == (0, "CONNECT_ERROR")
    assert "refused" in view["error"]


async def test_text_and_broken_json_bodies() -> None:
    """A text body is data as text; a JSON content type with a broken body falls back to text."""
    bodies = iter([(b"plain", "text/plain"), (b"{broken", "application/json")])

    def answer(request: HttpRequest) -> HttpResponse:
        content, ctype = next(bodies)
        return HttpResponse(200, headers={"Content-Type": ctype}, content=content)

    plugin = Recorder()
    async with _client(plugin, MockTransport(answer)) as client:
        await client.get("/a")
        await client.get("/b")
    assert [v["data"] for v in plugin.views] == ["plain", "{broken"]


async def test_a_request_body_that_is_not_json_is_left_out() -> None:
    """A JSON content type on a broken body gives no json key in the request dict."""
    seen: list[dict[str, Any]] = []

    class Peek(FlextApiPlugin):
        def before_request(self, request_config: dict[str, Any]) -> dict[str, Any]:
            seen.append(dict(request_config))
            return request_config

    async with _client(Peek(), MockTransport(_echo)) as client:
        await client.post("/a", content=b"{nope", headers={"Content-Type": "application/json"})
    assert "json" not in seen[0]
    assert seen[0]["timeout"] is not None


def test_streaming_response_view_has_no_body_fields() -> None:
    """A streaming response nobody read shows status and headers only."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    view = response_view(HttpResponse(200, stream=chunks()))
    assert view["status_code"] == 200 and "data" not in view


async def test_cached_answer_with_bytes_data_and_no_headers() -> None:
    """A cached answer's bytes data is the body as is; JSON content type by default."""

    class Cache(FlextApiPlugin):
        def before_request(self, request_config: dict[str, Any]) -> dict[str, Any]:
            request_config["_skip_request"] = True
            request_config["_cached_response"] = {"data": b"raw"}
            return request_config

    transport = MockTransport(_echo)
    async with _client(Cache(), transport) as client:
        result = await client.get("/a")
    assert transport.requests == []
    response = result.value
    assert (response.status_code, response.content, response.from_cache) == (200, b"raw", True)
    assert response.headers["content-type"] == "application/json"
