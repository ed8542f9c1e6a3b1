"""``EventStreamResponse`` / ``encode_event`` against odd events, headers and the drain."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from flext_api import ErrorCode, FlextApiError, ServerConfig
from flext_api.protocols import ServerSentEvent, SSEParser
from flext_api.server import EventStreamResponse
from flext_api.server._sse import encode_event
from tests.server.helpers import build_app, serve

GUARD = 30  # seconds: only a hang reaches it


@pytest.mark.parametrize("event", [b"hello", bytearray(b"x"), 5, 1.5, None, object()])
def test_event_of_another_type_is_refused(event: Any) -> None:
    """bytes, numbers, None... are INVALID_REQUEST: each went out as an empty event."""
    with pytest.raises(FlextApiError) as info:
        encode_event(event)
    assert info.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "event", ["a\ud800b", {"data": "x", "event": "\udc00"}, {"data": "x", "id": "\ud800"}]
)
def test_lone_surrogate_is_invalid_request(event: Any) -> None:
    """Text UTF-8 cannot encode (a client's JSON input may carry it) is INVALID_REQUEST,
    as the docs promise for bad events: it was a bare UnicodeEncodeError."""
    with pytest.raises(FlextApiError) as info:
        encode_event(event)
    assert info.value.code is ErrorCode.INVALID_REQUEST


class _Event:
    def __init__(self, data: str, id: Any = None) -> None:
        self.data = data
        self.id = id


def test_object_id_zero_is_sent() -> None:
    """An event object's id of 0 is sent (it was dropped as falsy); "" is no id."""
    assert encode_event(_Event("x", 0)) == b"id: 0\ndata: x\n\n"
    assert encode_event(ServerSentEvent("x")) == b"data: x\n\n"


@pytest.mark.parametrize("data", ["a\rdata: forged", "a\r\nevent: forged", "a\nid: 9"])
def test_line_breaks_in_data_cannot_forge_fields(data: str) -> None:
    """CR, CRLF and LF in data each start a new ``data:`` line, never another field."""
    (event,) = SSEParser().feed(encode_event({"data": data}))
    assert (event.data, event.event, event.id) == (
        data.replace("\r\n", "\n").replace("\r", "\n"),
        "message",
        "",
    )


def test_sync_iterable_is_refused_when_the_response_is_made() -> None:
    """A list (not async) is a CONFIG_ERROR at once; it used to fail after the response
    had started, cutting the connection."""
    with pytest.raises(FlextApiError) as info:
        EventStreamResponse(["a", "b"])  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIG_ERROR


def _app(**routes: Any) -> FastAPI:
    app = build_app(ServerConfig(), stream=io.StringIO())
    for path, endpoint in routes.items():
        app.add_api_route(f"/{path}", endpoint)
    return app


async def test_given_header_replaces_the_default() -> None:
    """``headers={"Cache-Control": ...}`` replaces the default: one header, not two."""

    async def endpoint() -> EventStreamResponse:
        async def source() -> AsyncIterator[str]:
            yield "a"

        return EventStreamResponse(source(), headers={"Cache-Control": "no-cache, no-transform"})

    async with serve(_app(events=endpoint)) as client:
        response = await asyncio.wait_for(client.get("/events"), GUARD)
    assert response.headers.get_list("cache-control") == ["no-cache, no-transform"]
    assert response.headers.get_list("x-accel-buffering") == ["no"]
    assert len(response.headers.get_list("content-type")) == 1


class _Closed:
    def __init__(self) -> None:
        self.closed = asyncio.Event()


def _endless(closed: _Closed, first: str | None) -> Any:
    async def source() -> AsyncIterator[str]:
        try:
            if first is not None:
                yield first
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.closed.set()

    return source


@pytest.mark.parametrize("first", ["one", None])
async def test_drain_ends_the_stream_cleanly(first: str | None) -> None:
    """Once the app drains, an endless stream ends after its next event or heartbeat
    (clients reconnect elsewhere), and its source is closed: it used to hold the drain
    (and the server's shutdown) for as long as the client stayed."""
    closed = _Closed()

    async def endpoint() -> EventStreamResponse:
        return EventStreamResponse(_endless(closed, first)(), heartbeat=0.01)

    app = _app(events=endpoint)
    async with serve(app) as client:
        app.state.flext.begin_drain()
        response = await asyncio.wait_for(client.get("/events"), GUARD)
    assert response.status_code == 200
    assert [e.data for e in SSEParser().feed(response.content)] == ([first] if first else [])
    assert closed.closed.is_set()


class _Fanout:
    """An async iterable whose ``__aiter__`` makes a new generator (and keeps it)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.made: list[Any] = []

    def __aiter__(self) -> AsyncIterator[Any]:
        generator = self._run()
        self.made.append(generator)
        return generator

    async def _run(self) -> AsyncIterator[Any]:
        try:
            yield "one"
            yield {"data": "bad", "retry": -1}  # refused: the stream fails here
            yield "never"
        finally:
            self.closed.set()


async def test_iterator_made_by_the_iterable_is_closed() -> None:
    """When the stream ends, the generator made by ``__aiter__`` is closed (its
    ``finally`` runs), not only the iterable, which has no ``aclose``."""
    fanout = _Fanout()

    async def endpoint() -> EventStreamResponse:
        return EventStreamResponse(fanout)

    async with serve(_app(events=endpoint)) as client:
        # Raised after the response started: the server cuts the connection.
        with pytest.raises((FlextApiError, RuntimeError)):
            await asyncio.wait_for(client.get("/events"), GUARD)
    assert fanout.closed.is_set()
