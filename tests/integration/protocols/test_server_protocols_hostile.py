"""The factory's GraphQL subscriptions and SSE responses on a real uvicorn, against
hostile messages, failing sources and a drain."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI, WebSocket
from pydantic import SecretStr

from flext_api.protocols import SSEParser
from flext_api.server import (
    AuthConfig,
    CorsConfig,
    EventStreamResponse,
    ServerConfig,
    ServerRateLimitConfig,
    create_fastapi_app,
    make_json_logger,
)
from tests.server.live import LiveServer

from .graphql_app import schema

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "sesame"}
GUARD = 30  # seconds: only a hang reaches it
DEEP = "[" * 100_000 + "]" * 100_000


class Served:
    def __init__(self, app: FastAPI, log: io.StringIO) -> None:
        self.app = app
        self.log = log
        self.live = LiveServer(app).start()
        self.url = self.live.url
        self.source_closed = threading.Event()


def _app(log: io.StringIO) -> FastAPI:
    config = ServerConfig(auth=AuthConfig(api_keys={"svc": SecretStr("sesame")}))
    return create_fastapi_app(config, graphql=schema, logger=make_json_logger(log))


@pytest.fixture
def served() -> Iterator[Served]:
    log = io.StringIO()
    app = _app(log)
    server = Served(app, log)

    @app.get("/events")
    async def events() -> EventStreamResponse:
        async def source() -> AsyncIterator[str]:
            try:
                yield "one"
                await asyncio.Event().wait()
                yield "never"
            finally:
                server.source_closed.set()

        return EventStreamResponse(source(), heartbeat=0.05)

    try:
        yield server
    finally:
        server.live.stop()


async def test_deeply_nested_message_closes_4400(served: Served) -> None:
    """A message nested deeper than the JSON parser's limit is a non-JSON message: close
    4400. It was a RecursionError that killed the connection (an ASGI crash)."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            served.url + "/graphql", protocols=("graphql-transport-ws",), headers=KEY
        ) as ws,
    ):
        await ws.send_str(DEEP)
        message = await ws.receive(timeout=GUARD)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == 4400


async def test_legacy_protocol_ignores_deeply_nested_message(served: Served) -> None:
    """graphql-ws ignores a message that is not JSON; a deeply nested one too (the
    connection used to crash), and the connection goes on."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(served.url + "/graphql", protocols=("graphql-ws",), headers=KEY) as ws,
    ):
        await ws.send_str(DEEP)
        await ws.send_json({"type": "connection_init"})
        message = await ws.receive_json(timeout=GUARD)
    assert message == {"type": "connection_ack"}


async def test_plain_websocket_routes_count_toward_the_default_limit() -> None:
    """Any ``@app.websocket`` route, not only GraphQL's: the request gate passed every
    WebSocket scope through, so the default limit never applied to them. Past it, the
    handshake is refused 429 with Retry-After, problem+json, before the route runs."""
    config = ServerConfig(rate_limit=ServerRateLimitConfig(default_limit="2/hour"))
    app = create_fastapi_app(config)
    accepted: list[str] = []

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        accepted.append("yes")
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    live = LiveServer(app).start()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.ws_connect(live.url + "/echo") as ws:
                    await ws.send_str("hi")
                    assert (await ws.receive(timeout=GUARD)).data == "hi"
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                async with session.ws_connect(live.url + "/echo"):
                    pass
    finally:
        live.stop()
    assert info.value.status == 429
    assert info.value.headers is not None and int(info.value.headers["Retry-After"]) > 0
    assert accepted == ["yes", "yes"]


@pytest.mark.parametrize(
    ("protocol", "subscribe", "data"),
    [("graphql-transport-ws", "subscribe", "next"), ("graphql-ws", "start", "data")],
)
async def test_subscription_error_is_masked(
    served: Served, protocol: str, subscribe: str, data: str
) -> None:
    """An exception raised by a subscription's source reaches the client as
    "Unexpected error.", on both WebSocket protocols; the log has it."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(served.url + "/graphql", protocols=(protocol,), headers=KEY) as ws,
    ):
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=GUARD))["type"] == "connection_ack"
        query = {"query": "subscription { failing }"}
        await ws.send_json({"id": "1", "type": subscribe, "payload": query})
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] == data:
            messages.append(await ws.receive_json(timeout=GUARD))
    payloads = [m["payload"] for m in messages if m["type"] == data]
    assert payloads[0] == {"data": {"failing": 1}}
    assert payloads[1]["errors"] == [{"message": "Unexpected error."}]
    assert "subscription broke" not in str(messages)
    assert "subscription broke" in served.log.getvalue()


async def test_open_stream_ends_cleanly_when_the_app_drains(served: Served) -> None:
    """A stream open when the drain begins (a pre-stop hook's ``begin_drain()``) ends
    with a complete body at its next heartbeat and its source is closed: it used to
    stay open, so the drain timed out and uvicorn's shutdown waited on it."""
    parser = SSEParser()
    seen: list[str] = []
    async with aiohttp.ClientSession() as session, session.get(served.url + "/events") as r:
        async for chunk in r.content.iter_any():
            seen += [e.data for e in parser.feed(chunk)]
            if seen == ["one"]:
                served.app.state.flext.begin_drain()
        # iter_any() ended: the chunked body was completed (a cut raises instead).
    assert seen == ["one"]
    assert served.source_closed.wait(GUARD)


@pytest.fixture
def open_app_with_cors() -> Iterator[str]:
    config = ServerConfig(cors=CorsConfig(allow_origins=("https://app.example",)))
    live = LiveServer(create_fastapi_app(config, graphql=schema)).start()
    try:
        yield live.url
    finally:
        live.stop()


async def _handshake(url: str, origin: str | None = None) -> int | None:
    """The refused handshake's status, or None once ``connection_ack`` arrived."""
    headers = {} if origin is None else {"Origin": origin}
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(
                url + "/graphql", protocols=("graphql-transport-ws",), headers=headers
            ) as ws:
                await ws.send_json({"type": "connection_init"})
                assert (await ws.receive_json(timeout=GUARD))["type"] == "connection_ack"
                return None
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_subscriptions_follow_the_cors_origins(open_app_with_cors: str) -> None:
    """A page of an origin the app allows by CORS may subscribe (it could query over
    HTTP, but its WebSocket was refused 403); other origins are still refused
    (cross-site WebSocket hijacking)."""
    assert await _handshake(open_app_with_cors, "https://app.example") is None
    assert await _handshake(open_app_with_cors, "https://evil.example") == 403


@pytest.fixture
def limited_url() -> Iterator[str]:
    config = ServerConfig(rate_limit=ServerRateLimitConfig(default_limit="2/hour"))
    live = LiveServer(create_fastapi_app(config, graphql=schema)).start()
    try:
        yield live.url
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("protocol", "subscribe", "data"),
    [("graphql-transport-ws", "subscribe", "next"), ("graphql-ws", "start", "data")],
)
async def test_websocket_operations_count_toward_the_default_limit(
    limited_url: str, protocol: str, subscribe: str, data: str
) -> None:
    """The upgrade (counted by the request gate) and each operation over the socket are
    hits of the default limit (a client refused 429 over HTTP ran operations without any
    limit over WebSocket). Past it, an operation gets a RATE_LIMITED error and a new
    upgrade is refused 429 before it is accepted."""
    query = {"query": "subscription { ticks(count: 1) }"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(limited_url + "/graphql", protocols=(protocol,)) as ws,
    ):  # hit 1
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=GUARD))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": subscribe, "payload": query})  # hit 2
        assert await ws.receive_json(timeout=GUARD) == {
            "id": "1",
            "type": data,
            "payload": {"data": {"ticks": 0}},
        }
        assert (await ws.receive_json(timeout=GUARD))["type"] == "complete"
        await ws.send_json({"id": "2", "type": subscribe, "payload": query})  # refused
        refused = await ws.receive_json(timeout=GUARD)
    assert (refused["id"], refused["type"]) == ("2", "error")
    payload = refused["payload"]
    error = payload[0] if isinstance(payload, list) else payload
    assert error["message"] == "Too many requests; retry later."
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert await _handshake(limited_url) == 429


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?api_key=sesame", {}),
        ("?x-api-key=sesame", {}),
        ("?access_token=sesame", {}),
        ("", {"Authorization": "Bearer "}),
        ("", {"Sec-WebSocket-Protocol": "graphql-transport-ws, sesame"}),
    ],
)
async def test_upgrade_credentials_come_from_headers_only(
    served: Served, query: str, headers: dict[str, str]
) -> None:
    """A key in the query string or a subprotocol, or an empty bearer token, does not
    authenticate the subscription's upgrade: refused before it is accepted (403)."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with session.ws_connect(
                served.url + "/graphql" + query,
                protocols=("graphql-transport-ws",),
                headers=headers,
            ):
                pass
    assert info.value.status == 403
