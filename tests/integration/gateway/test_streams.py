"""Streams through the gateway: SSE event by event, WebSockets with close codes intact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.integration.gateway.conftest import LiveGateway, basic_config, refused_handshake
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


async def _next_event(response: aiohttp.ClientResponse) -> bytes:
    buffer = b""
    while not buffer.endswith(b"\n\n"):
        chunk = await asyncio.wait_for(response.content.readany(), 30)
        assert chunk, "stream ended before the event"
        buffer += chunk
    return buffer


async def test_sse_arrives_event_by_event(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Each SSE event reaches the client before the upstream sends the next one."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/sse") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for n in range(3):
            a.release(f"event-{n}")  # the upstream sends only after this
            assert await _next_event(response) == f"data: event-{n}\n\n".encode()
        a.release("end")
        assert await response.content.read() == b""


async def test_websocket_echo_and_upstream_close_code(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Messages are echoed both ways; the upstream's close code and reason reach the client."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", protocols=("chat.v1",)) as ws,
    ):
        assert ws.protocol == "chat.v1"
        await ws.send_str("hello")
        assert (await ws.receive(timeout=30)).data == "hello"
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive(timeout=30)).data == b"\x00\x01"
        await ws.send_str("close:4001:bye now")
        msg = await ws.receive(timeout=30)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (4001, "bye now")


async def test_websocket_client_close_code_reaches_upstream(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The client's close code is passed to the upstream."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url + "/ws")
        await ws.send_str("ping")
        assert (await ws.receive(timeout=30)).data == "ping"
        await ws.close(code=4002, message=b"client done")
    for _ in range(500):
        if a.ws_closes:
            break
        await asyncio.sleep(0.01)
    assert a.ws_closes == [4002]


async def test_websocket_refused_when_no_instance_answers(run_gateway: Run) -> None:
    """A WebSocket to a dead upstream is refused with a typed 502, never accepted."""
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gw = run_gateway(basic_config(f"http://127.0.0.1:{sock.getsockname()[1]}"))
        refused = await refused_handshake(gw.url + "/ws")
    assert refused == (502, "connect_failure")


async def test_client_gone_stops_upstream_stream(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """When an SSE client disconnects, the gateway stops reading the upstream stream."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/sse") as response:
        a.release("one")
        assert await _next_event(response) == b"data: one\n\n"
    # the client is gone; the gateway's exchange must end without the upstream ending
    for _ in range(500):
        if gw.gateway.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert gw.gateway.in_flight == 0
    a.release("end")
