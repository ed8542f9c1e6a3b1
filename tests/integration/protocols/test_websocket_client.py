"""``client.websocket``: a connection kept across drops, against a real aiohttp server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flext_api import (
    BearerAuth,
    BreakerConfig,
    ClientConfig,
    ErrorCode,
    FlextApiClient,
)
from flext_api.protocols import (
    CloseCode,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketSettings,
)

from .conftest import LiveServer

pytestmark = pytest.mark.integration


async def test_text_round_trip(ws_server: LiveServer) -> None:
    """A text message is echoed back as text."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_text("hello")
        assert (await ws.receive_text()).value == "hello"


async def test_bytes_round_trip(ws_server: LiveServer) -> None:
    """A binary message is echoed back as bytes."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_bytes(b"\x00\x01")
        message = (await ws.receive()).value
    assert message == WebSocketMessage("bytes", b"\x00\x01")


async def test_json_round_trip(ws_server: LiveServer) -> None:
    """A JSON message is echoed back and decoded."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_json({"type": "echo", "n": 1})
        assert (await ws.receive_json()).value == {"type": "echo", "n": 1}


async def test_subprotocol_is_negotiated(ws_server: LiveServer) -> None:
    """A subprotocol the server supports is chosen."""
    settings = WebSocketSettings(protocols=("chat",))
    async with (
        FlextApiClient(ws_server.url) as client,
        client.websocket("/ws", settings=settings) as ws,
    ):
        assert ws.protocol == "chat"


async def test_auth_applies_to_upgrade(ws_server: LiveServer) -> None:
    """The client's auth plugin sets the upgrade request's Authorization."""
    async with (
        FlextApiClient(ws_server.url, auth=BearerAuth("sesame")) as client,
        client.websocket("/private") as ws,
    ):
        await ws.send_text("hi")
        assert (await ws.receive_text()).value == "hi"


async def test_refused_upgrade_is_http_status(ws_server: LiveServer) -> None:
    """An upgrade answered 401 fails with HTTP_STATUS and the status in details."""
    async with FlextApiClient(ws_server.url) as client:
        result = await client.websocket("/private").connect()
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.details["status"] == 401


async def test_connection_refused_is_connect_error() -> None:
    """Nothing listening gives CONNECT_ERROR."""
    async with FlextApiClient("http://127.0.0.1:9") as client:
        result = await client.websocket("/ws").connect()
    assert result.error_code is ErrorCode.CONNECT_ERROR


async def test_open_breaker_refuses_connect(ws_server: LiveServer) -> None:
    """Once the host's breaker has opened, connection attempts fail with CIRCUIT_OPEN."""
    config = ClientConfig(breaker=BreakerConfig(consecutive_failures=1))
    async with FlextApiClient("http://127.0.0.1:9", config=config) as client:
        await client.websocket("/ws").connect()
        result = await client.websocket("/ws").connect()
    assert result.error_code is ErrorCode.CIRCUIT_OPEN


async def test_server_close_is_typed(ws_server: LiveServer) -> None:
    """A close by the server ends with its code as a CloseCode and WEBSOCKET_CLOSED."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_json({"type": "close", "code": 1008})
        result = await ws.receive()
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED
    assert ws.closed is not None and ws.closed.code is CloseCode.POLICY_VIOLATION


async def test_client_close_is_normal(ws_server: LiveServer) -> None:
    """close() ends the connection with 1000 and later sends fail WEBSOCKET_CLOSED."""
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/ws")
        await ws.connect()
        closed = (await ws.close()).value
        sent = await ws.send_text("late")
    assert closed.is_normal and sent.error_code is ErrorCode.WEBSOCKET_CLOSED


async def test_send_before_connect_is_invalid(ws_server: LiveServer) -> None:
    """Sending on a connection never opened is INVALID_REQUEST."""
    async with FlextApiClient(ws_server.url) as client:
        result = await client.websocket("/ws").send_text("x")
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_wrong_payload_type_is_invalid(ws_server: LiveServer) -> None:
    """send_text with bytes is INVALID_REQUEST and sends nothing."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await ws.send_text(b"x")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_messages_route_by_type(ws_server: LiveServer) -> None:
    """JSON messages reach the handler registered for their type field."""
    seen: list[Any] = []
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        ws.on("tick", seen.append)
        await ws.send_json({"type": "subscribe", "count": 3})
        for _ in range(3):
            assert await ws.dispatch((await ws.receive()).value)
    assert [m["seq"] for m in seen] == [0, 1, 2]


async def test_receive_timeout_is_read_timeout(ws_server: LiveServer) -> None:
    """receive(timeout) with nothing arriving gives READ_TIMEOUT."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await ws.receive(timeout=0.05)
    assert result.error_code is ErrorCode.READ_TIMEOUT


async def test_twenty_drops_lose_nothing_after_resubscribe(ws_server: LiveServer) -> None:
    """Through 20 server drops, every tick sent after each resubscribe arrives, and the
    send queue never exceeds its bound."""
    count = 20

    async def resubscribe(ws: WebSocketConnection) -> None:
        await ws.send_json({"type": "subscribe", "count": count})

    settings = WebSocketSettings(send_queue=4, receive_queue=8)
    received: dict[int, list[int]] = {}
    async with (
        FlextApiClient(ws_server.url) as client,
        client.websocket("/ws", settings=settings, on_reconnect=resubscribe) as ws,
    ):
        await resubscribe(ws)
        for _drop in range(21):
            for _ in range(count):
                tick = (await ws.receive_json(timeout=30)).value
                received.setdefault(tick["conn"], []).append(tick["seq"])
            if _drop < 20:
                for _ in range(6):  # more than the queue holds: the sender waits
                    await ws.send_text("noise")
                for _ in range(6):
                    assert (await ws.receive_text(timeout=30)).value == "noise"
                await ws.send_json({"type": "drop"})
    assert ws.reconnects == 20
    assert received == ws_server.sent
    assert ws.max_queued <= 4


class _GateClock:
    """The system clock, except that sleeps wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sleeping = asyncio.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.gate.wait()


async def test_queued_sends_go_out_after_reconnect(ws_server: LiveServer) -> None:
    """A message queued while the connection is down is delivered after the reconnect."""
    clock = _GateClock()
    async with (
        FlextApiClient(ws_server.url, clock=clock) as client,
        client.websocket("/ws") as ws,
    ):
        await ws.send_json({"type": "drop"})
        await asyncio.wait_for(clock.sleeping.wait(), 30)  # dropped, waiting to reconnect
        await ws.send_text("after")
        clock.gate.set()
        assert (await ws.receive_text(timeout=30)).value == "after"
    assert ws.reconnects == 1


async def test_messages_iterate_until_close(ws_server: LiveServer) -> None:
    """``async for`` yields messages and stops when the server closes."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_text("a")
        await ws.send_json({"type": "close"})
        texts = [m.text async for m in ws]
    assert texts == ["a"]


async def test_run_returns_how_it_closed(ws_server: LiveServer) -> None:
    """run() dispatches until the end and returns the close."""
    others: list[WebSocketMessage] = []
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        ws.on_other(others.append)
        await ws.send_text("plain")
        await ws.send_json({"type": "close", "code": 1000})
        closed = (await asyncio.wait_for(ws.run(), 30)).value
    assert closed.is_normal and [m.text for m in others] == ["plain"]


async def test_repr_shows_state(ws_server: LiveServer) -> None:
    """The repr names the URL, the state and the queue fill."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        text = repr(ws)
    assert text.startswith(f"<WebSocketConnection {ws_server.ws_url}/ws open [queued: 0/256")


async def test_missing_pong_reconnects(ws_server: LiveServer) -> None:
    """A peer that stops answering pings is dropped and a new connection is made."""
    settings = WebSocketSettings(ping_interval=0.05, pong_timeout=0.05)
    async with (
        FlextApiClient(ws_server.url) as client,
        client.websocket("/mute", settings=settings) as ws,
    ):
        for _ in range(600):
            if ws.reconnects >= 1:
                break
            await asyncio.sleep(0.05)
    assert ws.reconnects >= 1 and ws_server.connections >= 2


async def test_service_url_connects_to_a_registered_instance(ws_server: LiveServer) -> None:
    """``websocket("service://NAME/path")`` picks an instance from the client's registry
    (it used to hand the service URL to aiohttp, which failed); an unknown service is a
    failed connect naming it."""
    from flext_api.discovery import ServiceInstance, ServiceRegistry

    registry = ServiceRegistry()
    live = ServiceInstance(id="live", name="echo", url=ws_server.url)
    (await registry.register("echo", live)).unwrap()
    async with (
        FlextApiClient(registry=registry) as client,
        client.websocket("service://echo/ws") as ws,
    ):
        await ws.send_text("via the registry")
        assert (await ws.receive_text()).value == "via the registry"
    async with FlextApiClient(registry=registry) as client:
        unknown = await client.websocket("service://ghost/ws").connect()
    assert unknown.is_failure and "ghost" in (unknown.error or "")
    await registry.aclose()


async def test_run_returns_a_handlers_failure(ws_server: LiveServer) -> None:
    """A handler that raises stops run(), which returns PLUGIN_ERROR (caused by the
    handler's exception) instead of raising; the connection stays usable."""

    def on_tick(message: Any) -> None:
        raise ZeroDivisionError("handler bug")

    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        ws.on("tick", on_tick)
        await ws.send_json({"type": "subscribe", "count": 1})
        result = await asyncio.wait_for(ws.run(), 30)
        await ws.send_text("still open")
        echoed = await ws.receive_text(timeout=30)
    err = result.exception
    assert result.error_code is ErrorCode.PLUGIN_ERROR and err is not None
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert err.details["message"].json() == {"type": "tick", "conn": 1, "seq": 0}
    assert echoed.value == "still open"
