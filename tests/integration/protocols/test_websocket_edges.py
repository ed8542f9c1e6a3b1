"""WebSocket edge cases against the real aiohttp test server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from flext_api import (
    ClientConfig,
    ErrorCode,
    FlextApiClient,
    FlextApiPlugin,
    FlextResult,
    HttpRequest,
    TimeoutConfig,
)
from flext_api.protocols import (
    CloseCode,
    WebSocketClosed,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketSettings,
)
from flext_api.testing import FakeClock
from tests._poll import eventually

from .conftest import LiveServer

pytestmark = pytest.mark.integration


class _RefusingAuth(FlextApiPlugin):
    def before_request(self, request: HttpRequest) -> FlextResult[HttpRequest]:
        return FlextResult.fail("no token today", code=ErrorCode.AUTH_ERROR)


async def test_connect_twice_is_harmless(ws_server: LiveServer) -> None:
    """A second connect() on an open connection succeeds without a new socket."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        again = await ws.connect()
    assert again.is_success and ws_server.connections == 1


async def test_invalid_header_is_invalid_request(ws_server: LiveServer) -> None:
    """A header with a newline is refused before connecting."""
    async with FlextApiClient(ws_server.url) as client:
        result = await client.websocket("/ws", headers={"X-Bad": "a\nb"}).connect()
    assert result.error_code is ErrorCode.INVALID_REQUEST and ws_server.connections == 0


async def test_auth_failure_fails_connect(ws_server: LiveServer) -> None:
    """An auth plugin that fails stops the upgrade with its error."""
    async with FlextApiClient(ws_server.url, auth=_RefusingAuth()) as client:
        result = await client.websocket("/ws").connect()
    assert result.error_code is ErrorCode.AUTH_ERROR and ws_server.connections == 0


async def test_send_bytes_wrong_type_is_invalid(ws_server: LiveServer) -> None:
    """send_bytes with a str is INVALID_REQUEST."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await ws.send_bytes("x")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_send_json_unserializable_is_invalid(ws_server: LiveServer) -> None:
    """send_json with a value JSON cannot hold is INVALID_REQUEST."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await ws.send_json({"when": object()})
        assert result.error_code is ErrorCode.INVALID_REQUEST
        # orjson would send NaN as null: refused, and the connection is still usable.
        nan = await ws.send_json({"v": float("nan")})
        assert nan.error_code is ErrorCode.INVALID_REQUEST
        assert "NaN" in (nan.error or "")
        assert (await ws.send_json({"v": None})).is_success


async def test_receive_before_connect_is_invalid(ws_server: LiveServer) -> None:
    """receive on a connection never opened is INVALID_REQUEST."""
    async with FlextApiClient(ws_server.url) as client:
        result = await client.websocket("/ws").receive()
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_messages_before_close_are_all_delivered(ws_server: LiveServer) -> None:
    """With a receive queue of 1, every message sent before the server's close arrives."""
    settings = WebSocketSettings(receive_queue=1)
    async with (
        FlextApiClient(ws_server.url) as client,
        client.websocket("/ws", settings=settings) as ws,
    ):
        await ws.send_json({"type": "burst-close", "count": 4})
        seqs = [(await ws.receive_json(timeout=30)).value["seq"] for _ in range(4)]
        end = await ws.receive(timeout=30)
    assert seqs == [0, 1, 2, 3] and end.error_code is ErrorCode.WEBSOCKET_CLOSED


async def test_close_while_reader_waits_on_full_queue(ws_server: LiveServer) -> None:
    """close() ends a connection whose unread messages fill the receive queue."""
    settings = WebSocketSettings(receive_queue=1)
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/ws", settings=settings)
        await ws.connect()
        await ws.send_json({"type": "subscribe", "count": 20})
        await ws.drain()
        closed = (await ws.close(CloseCode.GOING_AWAY, "done")).value
    assert (closed.code, closed.reason) == (CloseCode.GOING_AWAY, "done")


async def test_reconnects_exhausted_end_the_connection(ws_server: LiveServer) -> None:
    """When every reconnect is refused, the connection ends with WEBSOCKET_CLOSED."""
    settings = WebSocketSettings(max_reconnects=2)
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/once", settings=settings)
        await ws.connect()
        await ws.send_json({"type": "drop"})
        result = await ws.receive(timeout=30)
        await ws.close()
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED
    assert ws.closed is not None and ws.closed.reason == "reconnects exhausted"


async def test_accepted_reconnects_closed_at_once_count_as_failed(
    ws_server: LiveServer,
) -> None:
    """A server that accepts each reconnect and closes it before any message (1013)
    exhausts max_reconnects (each accepted upgrade used to reset the count: endless
    reconnects at the first backoff step)."""
    settings = WebSocketSettings(max_reconnects=2)
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/busy", settings=settings)
        await ws.connect()
        await ws.send_json({"type": "drop"})
        result = await ws.receive(timeout=30)
        await ws.close()
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED and ws_server.connections == 3
    assert ws.closed is not None and ws.closed.reason == "reconnects exhausted"


async def test_a_message_after_a_reconnect_resets_the_count(ws_server: LiveServer) -> None:
    """Reconnects that deliver messages are not failures: max_reconnects=1 survives
    three drops."""

    async def resubscribe(ws: WebSocketConnection) -> None:
        await ws.send_json({"type": "subscribe", "count": 1})

    settings = WebSocketSettings(max_reconnects=1)
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/ws", settings=settings, on_reconnect=resubscribe)
        await ws.connect()
        for _ in range(3):
            await ws.send_json({"type": "drop"})
            tick = await ws.receive_json(timeout=30)
            assert tick.value["type"] == "tick"
        await ws.close()
    assert ws.reconnects == 3 and ws_server.connections == 4


async def test_no_reconnect_when_turned_off(ws_server: LiveServer) -> None:
    """reconnect=False ends the connection at the first drop."""
    settings = WebSocketSettings(reconnect=False)
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/ws", settings=settings)
        await ws.connect()
        await ws.send_json({"type": "drop"})
        result = await ws.receive(timeout=30)
        await ws.close()
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED and ws_server.connections == 1
    assert ws.closed is not None and ws.closed.code is CloseCode.ABNORMAL


async def test_async_handler_and_fallback(ws_server: LiveServer) -> None:
    """Async handlers are awaited; non-JSON and unrouted messages go to the fallback."""
    ticks: list[Any] = []
    others: list[WebSocketMessage] = []

    async def on_tick(message: Any) -> None:
        ticks.append(message["seq"])

    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        ws.on("tick", on_tick)
        ws.on_other(others.append)
        await ws.send_json({"type": "subscribe", "count": 1})
        await ws.send_text("not json")
        await ws.send_json({"type": "other"})
        for _ in range(3):
            await ws.dispatch((await ws.receive(timeout=30)).value)
    assert ticks == [0] and [m.text for m in others] == ["not json", '{"type":"other"}']


async def test_unrouted_message_without_fallback(ws_server: LiveServer) -> None:
    """dispatch returns False when no handler takes the message."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        ws.on("tick", lambda m: None)
        await ws.send_text("plain")
        handled = await ws.dispatch((await ws.receive(timeout=30)).value)
    assert handled is False


async def test_refused_reconnect_stops_at_once(ws_server: LiveServer) -> None:
    """A reconnect refused with 403 ends the connection without further attempts."""
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/once?then=403")
        await ws.connect()
        await ws.send_json({"type": "drop"})
        result = await ws.receive(timeout=30)
        await ws.close()
    assert result.error_code is ErrorCode.WEBSOCKET_CLOSED and ws_server.connections == 2
    assert ws.reconnect_error is not None and ws.reconnect_error.details["status"] == 403
    assert ws.closed is not None and ws.closed.reason.startswith("reconnect refused")


async def test_receive_from_a_full_queue_lets_the_reader_go_on(ws_server: LiveServer) -> None:
    """With the receive queue full (the reader waiting), receives get every message in order."""
    settings = WebSocketSettings(receive_queue=1)
    async with (
        FlextApiClient(ws_server.url) as client,
        client.websocket("/ws", settings=settings) as ws,
    ):
        await ws.send_json({"type": "subscribe", "count": 3})
        for _ in range(600):
            if ws._room is not None:  # the reader waits for room
                break
            await asyncio.sleep(0.05)
        seqs = [(await ws.receive_json(timeout=30)).value["seq"] for _ in range(3)]
    assert seqs == [0, 1, 2]


async def test_every_receive_after_the_close_sees_it(ws_server: LiveServer) -> None:
    """After the server's close, each further receive is WEBSOCKET_CLOSED."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_json({"type": "close", "code": 1000})
        results = [await ws.receive(timeout=30) for _ in range(3)]
    assert [r.error_code for r in results] == [ErrorCode.WEBSOCKET_CLOSED] * 3


async def test_receive_json_of_non_json_is_decode_error_result(ws_server: LiveServer) -> None:
    """receive_json of a message that is not JSON returns DECODE_ERROR instead of raising."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_text("plain words")
        result = await ws.receive_json(timeout=5)
    assert result.error_code is ErrorCode.DECODE_ERROR


async def test_receive_text_of_non_utf8_bytes_is_decode_error_result(ws_server: LiveServer) -> None:
    """receive_text of a binary message that is not UTF-8 returns DECODE_ERROR."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        await ws.send_bytes(b"\xff\xfe")
        result = await ws.receive_text(timeout=5)
    assert result.error_code is ErrorCode.DECODE_ERROR


async def test_send_text_with_lone_surrogate_is_invalid_and_connection_lives(
    ws_server: LiveServer,
) -> None:
    """Text that is not valid Unicode is INVALID_REQUEST; the next message still goes."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        bad = await ws.send_text("\ud800")
        await ws.send_text("after")
        echoed = await ws.receive_text(timeout=5)
    assert bad.error_code is ErrorCode.INVALID_REQUEST and echoed.value == "after"


@pytest.mark.parametrize("timeout", [float("nan"), -1.0])
async def test_receive_with_unusable_timeout_is_invalid(
    ws_server: LiveServer, timeout: float
) -> None:
    """receive(timeout=NaN or < 0) is INVALID_REQUEST at once (NaN used to wait forever)."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await asyncio.wait_for(ws.receive(timeout=timeout), 5)
    assert result.error_code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("code", "reason"), [(70000, ""), (1005, ""), (999, ""), (1000, "x" * 124)]
)
async def test_close_with_unsendable_code_or_reason_is_invalid(
    ws_server: LiveServer, code: int, reason: str
) -> None:
    """close() with a code an endpoint may not send, or a reason over 123 bytes, is
    INVALID_REQUEST and leaves the connection open."""
    async with FlextApiClient(ws_server.url) as client, client.websocket("/ws") as ws:
        result = await ws.close(code, reason)
        await ws.send_text("still here")
        echoed = await ws.receive_text(timeout=5)
    assert result.error_code is ErrorCode.INVALID_REQUEST and ws.closed is not None
    assert echoed.value == "still here"


async def test_drain_returns_when_the_connection_ends_with_messages_queued(
    ws_server: LiveServer,
) -> None:
    """drain() returns once the connection has ended, though a message queued for the
    reconnect (refused with 403) was never sent."""
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/once?then=403")
        await ws.connect()
        await ws.send_json({"type": "drop"})
        for _ in range(100_000):  # until the reader has seen the drop
            if not ws.is_connected:
                break
            await asyncio.sleep(0)
        queued = await ws.send_text("for the reconnect")
        await asyncio.wait_for(ws.drain(), 5)
        ended = ws.closed
        await ws.close()
    assert queued.is_success and ended is not None


async def test_writer_ends_when_the_server_closes(ws_server: LiveServer) -> None:
    """After the server closes the connection, the writer task is finished too."""
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/ws", settings=WebSocketSettings(reconnect=False))
        await ws.connect()
        await ws.send_json({"type": "close", "code": 4001})
        assert (await ws.receive(timeout=5)).error_code is ErrorCode.WEBSOCKET_CLOSED
        await ws.close()
        writer = ws._writer
        assert writer is not None
        await asyncio.wait([writer], timeout=5)
    assert writer.done()


# Generous config timeouts: a connection that used them instead of the client's
# ``timeout=`` would outlive the test's bound and fail it.
_SLOW_CONFIG = ClientConfig(timeout=TimeoutConfig(connect=120, read=120))


async def test_unanswered_upgrade_is_read_timeout(silent_url: str) -> None:
    """A server that accepts the connection and never answers the upgrade gives
    READ_TIMEOUT after the client's read timeout (connect used to wait forever)."""
    fast = TimeoutConfig(connect=0.5, read=0.5)
    async with FlextApiClient(silent_url, config=_SLOW_CONFIG, timeout=fast) as client:
        ws = client.websocket("/ws")
        result = await asyncio.wait_for(ws.connect(), 60)
    assert result.error_code is ErrorCode.READ_TIMEOUT and ws.closed is None
    assert ws.connect_timeout == 0.5


async def test_failing_on_reconnect_hook_ends_the_connection(ws_server: LiveServer) -> None:
    """An on_reconnect hook that raises is logged and ends the connection: receive and
    send give WEBSOCKET_CLOSED (1011) and reconnect_error is a PLUGIN_ERROR caused by
    the hook's exception (the reader used to die silently, the connection looking alive)."""

    async def resubscribe(ws: WebSocketConnection) -> None:
        raise RuntimeError("resubscribe failed")

    with capture_logs() as logs:
        async with FlextApiClient(ws_server.url) as client:
            ws = client.websocket("/ws", on_reconnect=resubscribe)
            await ws.connect()
            await ws.send_json({"type": "drop"})
            received = await ws.receive(timeout=30)
            sent = await ws.send_text("after")
            connected = ws.is_connected
            await ws.close()
    assert received.error_code is ErrorCode.WEBSOCKET_CLOSED and not connected
    assert received.exception is not None
    assert received.exception.details["close_code"] is CloseCode.INTERNAL_ERROR
    assert sent.error_code is ErrorCode.WEBSOCKET_CLOSED
    err = ws.reconnect_error
    assert err is not None and err.code is ErrorCode.PLUGIN_ERROR
    assert isinstance(err.__cause__, RuntimeError) and ws_server.connections == 2
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "websocket.on_reconnect_failed"
    ]


async def test_close_while_a_reconnect_handshake_is_in_flight(ws_server: LiveServer) -> None:
    """close() during the reconnect's upgrade returns, and the new socket is closed (the
    reader used to carry on reading it, and close() waited forever)."""
    async with FlextApiClient(ws_server.url) as client:
        ws = client.websocket("/gated")
        await ws.connect()
        await ws.send_json({"type": "drop"})
        await asyncio.wait_for(ws_server.upgrading.wait(), 30)
        closing = asyncio.create_task(ws.close())
        for _ in range(100):  # let close() find no socket to close, then answer
            await asyncio.sleep(0)
        ws_server.gate.set()
        closed = await asyncio.wait_for(closing, 30)
    assert closed.value == WebSocketClosed(CloseCode.NORMAL) and not ws.is_connected
    assert ws.reconnects == 0


async def test_close_cuts_the_reconnect_backoff_short(ws_server: LiveServer) -> None:
    """close() while the reconnect waits for its backoff returns without that wait (a
    clock that never moves: close() used to wait for it)."""
    clock = FakeClock(auto_advance=False)
    async with FlextApiClient(ws_server.url, clock=clock) as client:
        ws = client.websocket("/ws")
        await ws.connect()
        await ws.send_json({"type": "drop"})
        for _ in range(3000):
            if clock.sleeps:
                break
            await asyncio.sleep(0.01)
        closed = await asyncio.wait_for(ws.close(), 30)
    assert clock.sleeps and closed.value == WebSocketClosed(CloseCode.NORMAL)
    assert ws_server.connections == 1


async def test_a_quiet_reconnect_that_lasts_resets_the_count(ws_server: LiveServer) -> None:
    """A reconnected socket that delivers nothing but stays open 30 s counts as working:
    max_reconnects=1 survives a second drop after it (quiet sockets dropping once a day
    would otherwise use the attempts up)."""
    clock = FakeClock()
    settings = WebSocketSettings(max_reconnects=1)
    async with FlextApiClient(ws_server.url, clock=clock) as client:
        ws = client.websocket("/ws", settings=settings)
        await ws.connect()
        await ws.send_json({"type": "drop"})
        assert await eventually(lambda: ws.reconnects == 1)
        clock.advance(31.0)  # open, quiet, for longer than the proof period
        await ws.send_json({"type": "drop"})
        assert await eventually(lambda: ws.reconnects == 2 or ws.closed is not None)
        assert (ws.reconnects, ws.closed) == (2, None)
        await ws.close()
