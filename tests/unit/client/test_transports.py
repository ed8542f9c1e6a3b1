"""MockTransport, ASGITransport and the shared OS-error mapping."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiError, FlextApiSyncClient, HttpRequest, HttpResponse
from flext_api._errors import ConfigError
from flext_api.client import FlextApiClient
from flext_api.transports import ASGITransport, MockTransport, Transport, map_os_error


@pytest.mark.parametrize(
    ("exc", "connecting", "code"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            True,
            ErrorCode.DNS_ERROR,
        ),
        (ssl.SSLCertVerificationError("bad cert"), True, ErrorCode.TLS_ERROR),
        (TimeoutError(), True, ErrorCode.CONNECT_TIMEOUT),
        (TimeoutError(), False, ErrorCode.READ_TIMEOUT),
        (ConnectionRefusedError(), True, ErrorCode.CONNECT_ERROR),
        (OSError(errno.EHOSTUNREACH, "unreachable"), False, ErrorCode.CONNECT_ERROR),
        (ConnectionResetError(), False, ErrorCode.PROTOCOL_ERROR),
        (ConnectionResetError(), True, ErrorCode.CONNECT_ERROR),
    ],
)
def test_map_os_error(exc: BaseException, connecting: bool, code: ErrorCode) -> None:
    """OS errors map to the most specific code, depending on the phase."""
    assert map_os_error(exc, connecting=connecting) is code


async def test_mock_transport_sync_and_async_handlers() -> None:
    """Handlers may be sync or async; requests are recorded; it satisfies Transport."""

    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(201, content=request.method.encode())

    transport = MockTransport(handler)
    assert isinstance(transport, Transport)
    async with FlextApiClient("http://m", transport=transport, default_plugins=False) as client:
        assert (await client.put("/x")).value.content == b"PUT"
    assert [r.method for r in transport.requests] == ["PUT"]
    assert repr(transport) == "<MockTransport [1 requests]>"
    assert transport.stats()["in_use"] == 0


async def test_mock_transport_errors() -> None:
    """A handler's FlextApiError passes through; a bad return value is a plugin-safe failure."""

    def raise_ours(request: HttpRequest) -> HttpResponse:
        raise FlextApiError.from_code(ErrorCode.READ_TIMEOUT, "slow")

    async with FlextApiClient(
        "http://m", transport=MockTransport(raise_ours), default_plugins=False
    ) as client:
        assert (await client.get("/")).error_code is ErrorCode.READ_TIMEOUT
    transport = MockTransport(lambda r: "nope")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="must return HttpResponse"):
        await transport.send(HttpRequest("GET", "http://m/"))
    await transport.aclose()
    with pytest.raises(FlextApiError, match="closed"):
        await transport.send(HttpRequest("GET", "http://m/"))


async def test_mock_transport_streams() -> None:
    """Streaming over the mock serves the body and tracks the open stream."""
    transport = MockTransport(lambda r: HttpResponse(200, content=b"abc"))
    async with FlextApiClient("http://m", transport=transport, default_plugins=False) as client:
        async with client.stream("GET", "/") as resp:
            assert transport.stats()["in_use"] == 1
            assert await resp.aread() == b"abc"
        assert transport.stats()["in_use"] == 0


async def _streamed_body() -> AsyncIterator[bytes]:
    yield b"from "
    yield b"the handler"


async def test_mock_handler_stream_reaches_a_streaming_caller() -> None:
    """A handler answering with a stream serves it to client.stream() (it served b"")."""
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    transport = MockTransport(lambda r: HttpResponse(200, stream=_streamed_body(), close=close))
    client = FlextApiClient("http://m", transport=transport, default_plugins=False)
    async with client, client.stream("GET", "/") as resp:
        assert await resp.aread() == b"from the handler"
    assert closed == [True]
    assert transport.stats()["in_use"] == 0


async def test_mock_handler_stream_is_read_for_a_buffered_call() -> None:
    """A handler's stream is read for a buffered call (its content was left unread)."""
    transport = MockTransport(lambda r: HttpResponse(200, stream=_streamed_body()))
    async with FlextApiClient("http://m", transport=transport, default_plugins=False) as client:
        result = await client.get("/")
    assert result.value.content == b"from the handler"


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("handler bug")
    if scope["path"] == "/silent":
        return
    message = await receive()
    body = (
        f"{scope['method']} {scope['path']} {scope['query_string'].decode()} "
        f"{dict(scope['headers'])[b'host'].decode()} "
    ).encode() + message["body"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
    assert (await receive())["type"] == "http.disconnect"


async def test_asgi_transport_round_trip() -> None:
    """Method, path, query, host and body reach the app; its answer comes back."""
    transport = ASGITransport(_asgi_app)  # type: ignore[arg-type]
    async with FlextApiClient(
        "http://app.local", transport=transport, default_plugins=False
    ) as client:
        result = await client.post("/a%20b", params={"q": 1}, content=b"payload")
        async with client.stream("GET", "/s") as resp:
            streamed = await resp.aread()

        async def gen() -> AsyncIterator[bytes]:
            yield b"gen"

        generated = await client.post("/g", content=gen())
    assert result.value.text == "POST /a b q=1 app.local payload"
    assert streamed.startswith(b"GET /s")
    assert generated.value.text.endswith("gen")
    assert repr(transport) == "<ASGITransport app=_asgi_app>"
    assert transport.stats()["in_use"] == 0


async def test_asgi_app_errors_are_protocol_errors() -> None:
    """An app that raises or never answers yields PROTOCOL_ERROR (or re-raises if asked)."""
    async with FlextApiClient(
        "http://a",
        transport=ASGITransport(_asgi_app),  # type: ignore[arg-type]
        default_plugins=False,
    ) as client:
        assert (await client.get("/boom")).error_code is ErrorCode.PROTOCOL_ERROR
        assert (await client.get("/silent")).error_code is ErrorCode.PROTOCOL_ERROR
    loud = ASGITransport(_asgi_app, raise_app_exceptions=True)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="handler bug"):
        await loud.send(HttpRequest("GET", "http://a/boom"))


def test_direct_path_is_refused_for_an_aiohttp_of_another_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The direct aiohttp path is checked against aiohttp's objects; a change turns it off."""
    import aiohttp

    from flext_api.transports import _aiohttp

    assert _aiohttp._direct_params() is not None  # the installed aiohttp has the shape

    async def send(self: object, conn: object, extra: object) -> None: ...

    monkeypatch.setattr(aiohttp.ClientRequest, "send", send)
    assert _aiohttp._direct_params() is None
    monkeypatch.undo()

    def init(self: object, method: str, url: object, *, headers: object = None) -> None: ...

    monkeypatch.setattr(aiohttp.ClientRequest, "__init__", init)
    assert _aiohttp._direct_params() is None


def test_aiohttp_parsed_urls_are_reused_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The aiohttp transport parses a URL once, and its cache of parsed URLs is bounded."""
    from flext_api.transports import _aiohttp

    monkeypatch.setattr(_aiohttp, "_URLS", {})
    monkeypatch.setattr(_aiohttp, "_URLS_MAX", 2)
    first = _aiohttp._url_of("http://h/a?x=1")
    assert _aiohttp._url_of("http://h/a?x=1") is first
    assert str(first) == "http://h/a?x=1"
    _aiohttp._url_of("http://h/b")
    _aiohttp._url_of("http://h/c")
    assert len(_aiohttp._URLS) <= 2 and "http://h/c" in _aiohttp._URLS


@pytest.mark.parametrize("given", ["httpx", "aiohttp", object()])
def test_transport_that_is_not_one_is_a_config_error_at_construction(given: object) -> None:
    """A transport name (what ClientConfig.transport takes) or any object without
    send/aclose is refused when the client is made, saying what to pass; it failed at
    the first request as an UNEXPECTED_ERROR."""
    with pytest.raises(ConfigError, match=r"transport= takes a Transport"):
        FlextApiClient("http://127.0.0.1:1", transport=given)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"ClientConfig\(transport="):
        FlextApiSyncClient("http://127.0.0.1:1", transport=given)


async def _cut_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    status = 999 if scope["path"] == "/999" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    more = scope["path"] in ("/raise", "/return")
    await send({"type": "http.response.body", "body": b"part", "more_body": more})
    if scope["path"] in ("/raise", "/after"):
        raise RuntimeError("app bug")


@pytest.mark.parametrize("path", ["/raise", "/return", "/999"])
async def test_asgi_cut_body_or_bad_status_is_a_protocol_error(path: str) -> None:
    """An app that fails or returns mid-body, or answers 999, is PROTOCOL_ERROR (a cut
    body came back as a success)."""
    transport = ASGITransport(_cut_app)  # type: ignore[arg-type]
    async with FlextApiClient("http://a", transport=transport, default_plugins=False) as client:
        assert (await client.get(path)).error_code is ErrorCode.PROTOCOL_ERROR


async def test_asgi_app_raising_after_a_whole_body_keeps_the_response() -> None:
    """An app that raises once its body is whole (a background task) keeps its answer."""
    transport = ASGITransport(_cut_app)  # type: ignore[arg-type]
    async with FlextApiClient("http://a", transport=transport, default_plugins=False) as client:
        assert (await client.get("/after")).value.content == b"part"


async def test_asgi_streaming_response_is_not_told_the_client_left() -> None:
    """The app's receive said http.disconnect right after the request body: Starlette's
    StreamingResponse (and SSE) listen for it and stopped at once, so every streamed
    answer was cut (PROTOCOL_ERROR). The disconnect comes once the response is whole."""
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            await asyncio.sleep(0)  # the disconnect listener runs meanwhile
            yield b"chunk%d;" % i

    async def stream(request: Any) -> StreamingResponse:
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/s", stream)])
    transport = ASGITransport(app)
    async with FlextApiClient("http://a", transport=transport, default_plugins=False) as client:
        result = await client.get("/s")
    assert result.value.content == b"chunk0;chunk1;chunk2;"


@pytest.mark.parametrize("url", ["http://a:99999/", "http://[::1/", "http://a/\u20ac"])
async def test_asgi_url_it_cannot_send_is_invalid_request(url: str) -> None:
    """A malformed port or IPv6 literal, or a path past Latin-1: INVALID_REQUEST, not a
    bare ValueError."""
    with pytest.raises(FlextApiError) as caught:
        await ASGITransport(_cut_app).send(HttpRequest("GET", url))  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("timeout", [-1, float("nan"), "5"])
def test_client_timeout_that_is_not_one_is_a_config_error(timeout: object) -> None:
    """A bad timeout= is a ConfigError naming the field (a bare pydantic ValidationError
    escaped the constructor)."""
    with pytest.raises(ConfigError, match="TimeoutConfig"):
        FlextApiClient("http://127.0.0.1:1", timeout=timeout)  # type: ignore[arg-type]
