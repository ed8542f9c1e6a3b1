"""WebSockets against hostile peers: a silent upstream, huge messages, a vanished client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from flext_api.gateway._websocket import MAX_MESSAGE_BYTES
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config, refused_handshake
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


async def test_an_upstream_that_never_answers_the_handshake_is_a_504(run_gateway: Run) -> None:
    """An upstream that accepts the connection and never answers: 504 within per_try."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        gw = run_gateway(basic_config(url, timeouts={"per_try": 0.5}))
        # A guard, not a speed check: the gateway used to hold the client for 300 s.
        async with asyncio.timeout(120):
            refused = await refused_handshake(gw.url + "/ws", timeout=aiohttp.ClientWSTimeout())
    assert refused == (504, "upstream_timeout")


async def test_a_message_bigger_than_the_bound_closes_the_client_with_1009(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upstream message over the listener's bound is not relayed: the client gets 1009."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", max_msg_size=0) as ws,
    ):
        await ws.send_str(f"big:{MAX_MESSAGE_BYTES + 1}")
        msg = await ws.receive(timeout=30)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 1009
    await eventually(lambda: not gw.gateway.websockets)
    assert not gw.gateway.websockets


async def test_a_vanished_client_closes_the_upstream_with_a_sendable_code(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A client that drops the connection: the upstream gets 1000/1001, never 1005/1006."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url + "/ws")
        await ws.send_str("ping")
        assert (await ws.receive(timeout=30)).data == "ping"
        connection = ws._response.connection
        assert connection is not None and connection.transport is not None
        connection.transport.abort()
        await eventually(lambda: bool(a.ws_closes))
    assert a.ws_closes in ([1000], [1001])
    await eventually(lambda: not gw.gateway.websockets)
    assert not gw.gateway.websockets
