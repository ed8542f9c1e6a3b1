"""What the WebSocket connection does when a write hits a socket that just died.

A real server cannot make the write fail at a chosen moment (the reader task usually
notices the drop first), so these drive the connection's logic over a stub socket.
"""

from __future__ import annotations

import asyncio

from flext_api import ErrorCode, FlextApiClient
from flext_api.protocols import CloseCode, WebSocketClosed, WebSocketConnection


class _DeadSocket:
    closed = False

    async def send_str(self, data: str) -> None:
        raise ConnectionResetError("gone")

    async def send_bytes(self, data: bytes) -> None:
        raise ConnectionResetError("gone")


def _connection() -> WebSocketConnection:
    conn = WebSocketConnection(FlextApiClient("http://127.0.0.1:1"), "/ws")
    conn._ws = _DeadSocket()  # type: ignore[assignment]
    conn._ready = True
    return conn


async def test_failed_direct_text_send_is_queued_for_the_reconnect() -> None:
    """A text message whose direct write fails waits in the queue, reported as sent."""
    conn = _connection()
    result = await conn.send_text("hello")
    assert result.is_success and conn._outbox.get_nowait() == ("text", "hello")


async def test_failed_direct_bytes_send_is_queued_for_the_reconnect() -> None:
    """A binary message whose direct write fails waits in the queue."""
    conn = _connection()
    result = await conn.send_bytes(b"\x01")
    assert result.is_success and conn._outbox.get_nowait() == ("bytes", b"\x01")


async def test_failed_send_while_closing_reports_the_close() -> None:
    """When the connection is closing, a failed write is WEBSOCKET_CLOSED, not queued."""
    conn = _connection()
    conn._closing = True
    result = await conn.send_text("late")
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED and conn._outbox.empty()


async def test_failed_bytes_send_while_closing_reports_the_error() -> None:
    """A failed binary write while closing returns the write's PROTOCOL_ERROR."""
    conn = _connection()
    conn._closing = True
    result = await conn.send_bytes(b"x")
    assert result.error_code is ErrorCode.PROTOCOL_ERROR and conn._outbox.empty()


async def test_writer_waits_for_reconnect_then_stops_at_close() -> None:
    """The writer keeps a message whose write failed until the connection ends."""
    conn = _connection()
    writer = asyncio.create_task(conn._write_loop())
    conn._connected.set()
    await conn._outbox.put(("text", "kept"))
    for _ in range(1000):
        if not conn._connected.is_set():
            break
        await asyncio.sleep(0)
    assert not conn._connected.is_set() and not conn._ready
    conn.closed = WebSocketClosed(CloseCode.ABNORMAL)
    conn._connected.set()
    await asyncio.wait_for(writer, 30)
    assert writer.done()
