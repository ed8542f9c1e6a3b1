"""The WebSocket connection's receive queue and send counter under cancellation.

Cancellation at a chosen moment cannot be arranged through a real server, so these
drive the connection's logic over a stub socket.
"""

from __future__ import annotations

import asyncio

from flext_api import FlextApiClient
from flext_api.protocols import WebSocketConnection, WebSocketMessage, WebSocketSettings


class _RecordingSocket:
    closed = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_str(self, data: str) -> None:
        self.sent.append(data)


def _connection(settings: WebSocketSettings | None = None) -> WebSocketConnection:
    conn = WebSocketConnection(FlextApiClient("http://127.0.0.1:1"), "/ws", settings=settings)
    conn._reader = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
    return conn


async def test_receiver_cancelled_as_a_message_arrives_loses_nothing() -> None:
    """A message delivered just after its receiver was cancelled goes to the next one."""
    conn = _connection()
    first = asyncio.create_task(conn.receive())
    await asyncio.sleep(0)  # waiting for a message
    first.cancel()
    conn._inbox.append(WebSocketMessage("text", "kept"))
    conn._wake_getters()  # the reader's delivery, before the receiver has unwound
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()
    assert (await conn.receive(timeout=30)).value == WebSocketMessage("text", "kept")


async def test_send_cancelled_while_the_queue_is_full_is_not_counted() -> None:
    """A send cancelled while waiting for room is dropped; once the queue drains,
    sends write directly again."""
    conn = _connection(WebSocketSettings(send_queue=1))
    socket = _RecordingSocket()
    conn._ws = socket  # type: ignore[assignment]
    assert (await conn.send_text("a")).is_success  # not ready yet: queued
    blocked = asyncio.create_task(conn.send_text("b"))
    await asyncio.sleep(0)  # waiting for room
    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)
    writer = asyncio.create_task(conn._write_loop())
    conn._connected.set()
    await asyncio.wait_for(conn.drain(), 30)
    conn._ready = True
    assert (await conn.send_text("c")).is_success
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert socket.sent == ["a", "c"] and conn._pending == 0 and conn._outbox.empty()
