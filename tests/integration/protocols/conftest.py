"""Real local servers for the protocol clients: aiohttp apps on 127.0.0.1, free ports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from flext_api.testing import set_testing


@pytest.fixture(autouse=True)
def _no_backoff_sleeps() -> Any:
    with set_testing(True):
        yield


@dataclass
class LiveServer:
    """A running aiohttp app: ``url`` (http), ``ws_url``, and what it recorded."""

    url: str
    last_event_ids: list[str | None] = field(default_factory=list)
    connections: int = 0
    upgrade_headers: list[dict[str, Any]] = field(default_factory=list)
    sent: dict[int, list[int]] = field(default_factory=dict)
    upgrading: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]


LIVE = web.AppKey("live", LiveServer)


async def _serve(app: web.Application) -> AsyncIterator[tuple[web.AppRunner, str]]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield runner, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- SSE -------------------------------------------------------------------------------------
async def _resumed_stream(request: web.Request) -> tuple[LiveServer, int, web.StreamResponse]:
    """Count the connection, record its Last-Event-ID and open the event stream: the
    server, the first event number to send (after Last-Event-ID) and the response."""
    live: LiveServer = request.app[LIVE]
    live.connections += 1
    last = request.headers.get("Last-Event-ID")
    live.last_event_ids.append(last)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    return live, int(last) + 1 if last else 1, resp


async def _events(request: web.Request) -> web.StreamResponse:
    """Three events per connection, continuing after Last-Event-ID, then a cut."""
    live, start, resp = await _resumed_stream(request)
    await resp.write(b"retry: 5\n: hello\n\n")
    for n in range(start, start + 3):
        await resp.write(f"id: {n}\nevent: tick\ndata: {n}\n\n".encode())
    if request.query.get("stall") and live.connections == 1:
        # Silence until the client gives up on the idle stream and hangs up.
        for _ in range(1200):
            if request.transport is None or request.transport.is_closing():
                break
            await asyncio.sleep(0.05)
        return resp
    assert request.transport is not None
    request.transport.close()  # cut the stream without a clean end
    return resp


async def _no_content(request: web.Request) -> web.Response:
    request.app[LIVE].connections += 1
    return web.Response(status=204)


async def _not_a_stream(request: web.Request) -> web.Response:
    return web.json_response({"a": 1})


async def _endless_line(request: web.Request) -> web.StreamResponse:
    """One event, then a ``data:`` line of 64 KiB chunks that never ends (until cut)."""
    request.app[LIVE].connections += 1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"id: 1\ndata: first\n\ndata: ")
    chunk = b"x" * 65536
    for _ in range(1024):  # 64 MiB at most: the client gives up long before
        await response.write(chunk)
    return response


async def _torn(request: web.Request) -> web.StreamResponse:
    """Events after Last-Event-ID; the first connection is cut inside its second event."""
    live, start, resp = await _resumed_stream(request)
    await resp.write(f"id: {start}\ndata: {start}\n\nid: {start + 1}\ndata: {start + 1}\n".encode())
    if live.connections > 1:
        await resp.write(b"\n")
    assert request.transport is not None
    request.transport.close()
    return resp


@pytest.fixture
async def sse_server() -> AsyncIterator[LiveServer]:
    app = web.Application()
    app.router.add_get("/events", _events)
    app.router.add_get("/done", _no_content)
    app.router.add_get("/json", _not_a_stream)
    app.router.add_get("/endless", _endless_line)
    app.router.add_get("/torn", _torn)
    live = app[LIVE] = LiveServer("")
    async for _runner, url in _serve(app):
        live.url = url
        yield live


# -- WebSocket -------------------------------------------------------------------------------
async def _ws(request: web.Request) -> web.WebSocketResponse:
    """Echo; ``subscribe`` -> N ``tick`` messages; ``drop`` -> connection cut."""
    live: LiveServer = request.app[LIVE]
    live.connections += 1
    conn = live.connections
    live.upgrade_headers.append(dict(request.headers))
    ws = web.WebSocketResponse(protocols=("chat",))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
            continue
        if msg.type is not WSMsgType.TEXT:
            continue
        data = msg.json() if msg.data.startswith("{") else {"type": "echo"}
        kind = data.get("type")
        if kind == "subscribe":
            seqs = live.sent.setdefault(conn, [])
            for n in range(int(data.get("count", 5))):
                seqs.append(n)
                await ws.send_json({"type": "tick", "conn": conn, "seq": n})
        elif kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            break
        elif kind == "burst-close":
            for n in range(int(data.get("count", 3))):
                await ws.send_json({"type": "tick", "seq": n})
            await ws.close(code=1000)
            break
        elif kind == "close":
            await ws.close(code=int(data.get("code", 1000)), message=b"bye")
            break
        else:
            await ws.send_str(msg.data)
    return ws


async def _ws_mute(request: web.Request) -> web.WebSocketResponse:
    """Accepts, never answers pings, never speaks."""
    live: LiveServer = request.app[LIVE]
    live.connections += 1
    ws = web.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    async for _msg in ws:
        pass
    return ws


async def _ws_once(request: web.Request) -> web.StreamResponse:
    """A WebSocket the first time; later upgrades get ``?then=`` (503 by default)."""
    live = request.app[LIVE]
    if live.connections >= 1:
        live.connections += 1
        raise (
            web.HTTPForbidden()
            if request.query.get("then") == "403"
            else web.HTTPServiceUnavailable()
        )
    return await _ws(request)


async def _ws_gated(request: web.Request) -> web.StreamResponse:
    """A WebSocket the first time; later upgrades set ``upgrading`` and are answered only
    once ``gate`` is set."""
    live = request.app[LIVE]
    if live.connections >= 1:
        live.upgrading.set()
        await live.gate.wait()
    return await _ws(request)


async def _ws_busy(request: web.Request) -> web.WebSocketResponse:
    """A WebSocket the first time; later upgrades are accepted and closed at once with
    1013 (try again later), as an overloaded server does."""
    live = request.app[LIVE]
    if live.connections >= 1:
        live.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=1013, message=b"busy")
        return ws
    return await _ws(request)


async def _gql_ws(request: web.Request) -> web.WebSocketResponse:
    """A scripted graphql-transport-ws peer; ``mode`` picks the script."""
    mode = request.query.get("mode", "")
    live: LiveServer = request.app[LIVE]
    live.connections += 1
    protocols = () if mode == "noproto" else ("graphql-transport-ws",)
    ws = web.WebSocketResponse(protocols=protocols)
    await ws.prepare(request)
    init = await ws.receive_json()
    live.upgrade_headers.append({"init": init["type"]})
    if mode == "close":
        await ws.close()
        return ws
    if mode == "silent":  # never acknowledges
        async for _msg in ws:
            pass
        return ws
    await ws.send_json({"type": "nope" if mode == "noack" else "connection_ack"})
    if mode == "noack":
        await ws.close()
        return ws
    subscribe = await ws.receive_json()
    live.upgrade_headers.append({"payload": subscribe["payload"]})
    if mode == "ping":
        await ws.send_json({"type": "ping"})
        pong = await ws.receive_json()
        await ws.send_json({"id": "1", "type": "next", "payload": {"data": {"pong": pong["type"]}}})
        await ws.send_json({"type": "pong"})
        await ws.send_json({"id": "1", "type": "weird"})
    elif mode == "drop":
        await ws.close(code=1000)
        return ws
    elif mode == "error-str":
        await ws.send_json({"id": "1", "type": "error", "payload": "no such thing"})
    elif mode == "error-list":
        await ws.send_json({"id": "1", "type": "error", "payload": ["boom", {"message": "bad"}]})
    elif mode == "not-json":
        await ws.send_str("not json")
    async for _msg in ws:
        pass
    return ws


async def _ws_private(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization") != "Bearer sesame":
        raise web.HTTPUnauthorized()
    return await _ws(request)


@pytest.fixture
async def ws_server() -> AsyncIterator[LiveServer]:
    app = web.Application()
    app.router.add_get("/ws", _ws)
    app.router.add_get("/private", _ws_private)
    app.router.add_get("/mute", _ws_mute)
    app.router.add_get("/once", _ws_once)
    app.router.add_get("/gated", _ws_gated)
    app.router.add_get("/busy", _ws_busy)
    app.router.add_get("/gqlws", _gql_ws)
    live = app[LIVE] = LiveServer("")
    async for _runner, url in _serve(app):
        live.url = url
        yield live


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listener on 127.0.0.1 that takes connections (the kernel completes them) and
    never answers a byte: an upgrade sent to it waits for its answer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


# -- GraphQL (strawberry on uvicorn) -----------------------------------------------------------
class GraphQLServer:
    """The strawberry test app on a real uvicorn; ``counts`` records what it saw."""

    def __init__(self) -> None:
        from tests.server.live import LiveServer as Uvicorn

        from .graphql_app import build_app

        self.counts: dict[str, int] = {}
        self.uvicorn = Uvicorn(build_app(self.counts)).start()
        self.url = self.uvicorn.url


@pytest.fixture(scope="module")
def gql_server() -> Iterator[GraphQLServer]:
    server = GraphQLServer()
    try:
        yield server
    finally:
        server.uvicorn.stop()
