"""Server helpers on a factory app served by uvicorn: SSE responses and authenticated
WebSocket endpoints."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import aiohttp
import jwt
import pytest
from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect
from pydantic import SecretStr

from flext_api import ErrorCode, FlextApiClient, FlextApiError
from flext_api.protocols import ServerSentEvent, SSEParser
from flext_api.server import (
    AuthConfig,
    EventStreamResponse,
    Principal,
    ServerConfig,
    create_fastapi_app,
    require_websocket_auth,
)
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "sesame"}


class Signals:
    def __init__(self) -> None:
        self.first_received = threading.Event()
        self.closed = threading.Event()


def _app(signals: Signals) -> FastAPI:
    app = create_fastapi_app(ServerConfig(auth=AuthConfig(api_keys={"svc": SecretStr("sesame")})))

    @app.get("/events")
    async def events() -> EventStreamResponse:
        async def source() -> AsyncIterator[object]:
            yield ServerSentEvent("one", event="tick", id="1")
            yield {"id": 2, "data": {"n": 2}}
            yield "three\nlines\nhere"

        return EventStreamResponse(source())

    @app.get("/unbuffered")
    async def unbuffered() -> EventStreamResponse:
        async def source() -> AsyncIterator[object]:
            yield "first"
            # Only once the client has the first event does the second exist: a
            # buffering layer would hold "first" back forever.
            for _ in range(3000):
                if signals.first_received.is_set():
                    break
                await asyncio.sleep(0.01)
            yield "second"

        return EventStreamResponse(source())

    @app.get("/quiet")
    async def quiet() -> EventStreamResponse:
        async def source() -> AsyncIterator[object]:
            try:
                await asyncio.Event().wait()
                yield "never"
            finally:
                signals.closed.set()

        return EventStreamResponse(source(), heartbeat=0.05)

    @app.get("/boom")
    async def boom() -> EventStreamResponse:
        async def source() -> AsyncIterator[object]:
            yield "one"
            raise RuntimeError("source broke")

        return EventStreamResponse(source())

    @app.websocket("/ws-admin")
    async def ws_admin(
        websocket: WebSocket,
        user: Annotated[Principal, Depends(require_websocket_auth(scopes=["admin"]))],
    ) -> None:
        await websocket.accept()
        await websocket.close()

    @app.websocket("/ws")
    async def ws_echo(
        websocket: WebSocket, user: Annotated[Principal, Depends(require_websocket_auth())]
    ) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{user.subject}:{text}")
        await websocket.close()

    return app


@pytest.fixture
def server() -> Iterator[tuple[str, Signals]]:
    signals = Signals()
    live = LiveServer(_app(signals)).start()
    try:
        yield live.url, signals
    finally:
        live.stop()


async def _events(client: FlextApiClient, path: str, n: int) -> list[ServerSentEvent]:
    parser = SSEParser()
    events: list[ServerSentEvent] = []
    async with client.stream("GET", path, timeout=30) as response:
        async for chunk in response.aiter_bytes():
            events.extend(parser.feed(chunk))
            if len(events) >= n:
                break
    return events


async def test_sse_response_encodes_events(server: tuple[str, Signals]) -> None:
    """Event objects, dicts (JSON data) and multi-line strings arrive as sent."""
    url, _ = server
    async with FlextApiClient(url) as client:
        events = await _events(client, "/events", 3)
    assert events == [
        ServerSentEvent("one", event="tick", id="1"),
        ServerSentEvent('{"n":2}', id="2"),
        ServerSentEvent("three\nlines\nhere", id="2"),
    ]


async def test_sse_response_headers(server: tuple[str, Signals]) -> None:
    """The stream is text/event-stream, not cached, not buffered by proxies."""
    url, _ = server
    async with FlextApiClient(url) as client, client.stream("GET", "/events") as response:
        headers = response.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert (headers["cache-control"], headers["x-accel-buffering"]) == ("no-store", "no")


async def test_sse_is_not_buffered_by_the_factory(server: tuple[str, Signals]) -> None:
    """The first event reaches the client before the source produces the second."""
    url, signals = server
    parser = SSEParser()
    seen: list[str] = []
    async with FlextApiClient(url) as client, client.stream("GET", "/unbuffered", timeout=30) as r:
        async for chunk in r.aiter_bytes():
            seen += [e.data for e in parser.feed(chunk)]
            if seen == ["first"]:
                signals.first_received.set()
            if len(seen) == 2:
                break
    assert seen == ["first", "second"]


async def test_sse_heartbeat_and_disconnect(server: tuple[str, Signals]) -> None:
    """A quiet stream sends ping comments, and the source is closed when the client leaves."""
    url, signals = server
    async with FlextApiClient(url) as client, client.stream("GET", "/quiet", timeout=30) as r:
        first = await anext(r.aiter_bytes())
    assert first.startswith(b": ping")
    for _ in range(600):
        if signals.closed.is_set():
            break
        await asyncio.sleep(0.05)
    assert signals.closed.is_set()


async def test_websocket_endpoint_with_api_key(server: tuple[str, Signals]) -> None:
    """An upgrade carrying the API key reaches the endpoint with its principal."""
    url, _ = server
    async with FlextApiClient(url, headers=KEY) as client, client.websocket("/ws") as ws:
        await ws.send_text("hi")
        assert (await ws.receive_text(timeout=30)).value == "svc:hi"


async def test_websocket_endpoint_without_credentials(server: tuple[str, Signals]) -> None:
    """An upgrade without credentials is refused before it is accepted (403)."""
    url, _ = server
    async with FlextApiClient(url) as client:
        result = await client.websocket("/ws").connect()
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.details["status"] == 403


async def test_sse_stream_ends_cleanly(server: tuple[str, Signals]) -> None:
    """When the source is exhausted the response ends and the body is complete."""
    url, _ = server
    async with FlextApiClient(url) as client, client.stream("GET", "/events") as response:
        body = await response.aread()
    assert [e.data for e in SSEParser().feed(body)] == ["one", '{"n":2}', "three\nlines\nhere"]


async def test_sse_source_error_cuts_the_stream(server: tuple[str, Signals]) -> None:
    """A source that raises ends the stream after the events it produced."""
    url, _ = server
    parser = SSEParser()
    seen: list[str] = []
    failure: FlextApiError | None = None
    async with FlextApiClient(url) as client, client.stream("GET", "/boom") as response:
        try:
            async for chunk in response.aiter_bytes():
                seen += [e.data for e in parser.feed(chunk)]
        except FlextApiError as exc:
            failure = exc
    assert seen == ["one"]
    assert failure is None or failure.code is ErrorCode.PROTOCOL_ERROR


async def test_websocket_scope_missing_is_refused(server: tuple[str, Signals]) -> None:
    """An upgrade whose credentials lack a required scope is refused (403)."""
    url, _ = server
    async with FlextApiClient(url, headers=KEY) as client:
        result = await client.websocket("/ws-admin").connect()
    assert result.exception is not None and result.exception.details["status"] == 403


async def test_websocket_route_is_closed_when_its_jwt_expires() -> None:
    """A route authenticated by require_websocket_auth: the socket closes at the token's
    exp with 4403, the handler sees the client leave, and its later send raises."""
    secret = "s" * 32
    seen: dict[str, object] = {}
    handler_done = threading.Event()  # the handler runs on the server's own thread
    app = create_fastapi_app(ServerConfig(auth=AuthConfig(jwt_secret=SecretStr(secret),
                                                          jwt_leeway=0)))  # fmt: skip

    @app.websocket("/feed")
    async def feed(
        websocket: WebSocket, user: Annotated[Principal, Depends(require_websocket_auth())]
    ) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect as exc:
            seen["disconnect"] = exc.code
        try:
            await websocket.send_text("too late")
        except WebSocketDisconnect as exc:
            seen["late_send"] = exc.code
        handler_done.set()

    exp = int(time.time()) + 2
    token = jwt.encode({"sub": "alice", "exp": exp}, secret, algorithm="HS256")
    live = LiveServer(app).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                live.url.replace("http", "ws", 1) + "/feed",
                headers={"Authorization": f"Bearer {token}"},
            ) as ws,
        ):
            await ws.send_str("ping")
            assert (await ws.receive_str(timeout=30)) == "ping"
            closing = await ws.receive(timeout=30)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 4403
            assert time.time() >= exp
        assert await asyncio.to_thread(handler_done.wait, 30)
    finally:
        live.stop()
    assert seen == {"disconnect": 4403, "late_send": 1006}
