"""Protocol clients against misbehaving servers: refusals with ``Retry-After``, error
statuses on a client that does not fail on them, event IDs that cannot be echoed, and
graphql-transport-ws peers that ping early or speak of other operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from flext_api import (
    ClientConfig,
    ErrorCode,
    FlextApiClient,
    FlextApiError,
    FlextResult,
    RetryConfig,
    TimeoutConfig,
)
from flext_api.protocols import GraphQLClient, ServerSentEvent
from flext_api.testing import FakeClock

from .conftest import _serve

pytestmark = pytest.mark.integration

Script = list[dict[str, Any]]


@dataclass
class Peer:
    """What the scripted server saw: connections per path, messages from the client."""

    url: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)

    def count(self, request: web.Request) -> int:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return self.hits[request.path]


PEER = web.AppKey("peer", Peer)


async def _stream(request: web.Request, body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(body)
    return response


def _refuse_once(status: int) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The first connection is refused with ``status`` and ``Retry-After: 7`` (an HTML
    page, as a proxy sends); later ones get one event."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.app[PEER].count(request) == 1:
            return web.Response(
                status=status,
                headers={"Retry-After": "7"},
                text="<html>busy</html>",
                content_type="text/html",
            )
        return await _stream(request, b"data: ok\n\n")

    return handler


async def _missing(request: web.Request) -> web.Response:
    request.app[PEER].count(request)
    return web.Response(status=404, text="<html>no</html>", content_type="text/html")


async def _unicode_id(request: web.Request) -> web.StreamResponse:
    """One event whose ID is not ASCII (valid: an ID is any text without NUL), then a cut."""
    request.app[PEER].count(request)
    response = await _stream(request, "id: caf\u00e9\ndata: first\n\n".encode())
    assert request.transport is not None
    request.transport.close()
    return response


def _gql(script: Script) -> Callable[[web.Request], Awaitable[web.WebSocketResponse]]:
    """A graphql-transport-ws peer: after ``connection_init`` it sends ``script``; a
    ``{"wait": True}`` step waits for the client's next message (the ``subscribe``)."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        peer = request.app[PEER]
        ws = web.WebSocketResponse(protocols=("graphql-transport-ws",))
        await ws.prepare(request)
        peer.received.append(await ws.receive_json())
        for step in script:
            if step.get("wait"):
                peer.received.append(await ws.receive_json())
            else:
                await ws.send_json(step)
        async for msg in ws:  # record what the client says until it closes
            if msg.type is WSMsgType.TEXT:
                peer.received.append(msg.json())
        return ws

    return handler


_ACK = {"type": "connection_ack"}
_WAIT = {"wait": True}
_MINE = {"id": "1", "type": "next", "payload": {"data": {"x": 1}}}
_DONE = {"id": "1", "type": "complete"}


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    app = web.Application()
    app.router.add_get("/503", _refuse_once(503))
    app.router.add_get("/429", _refuse_once(429))
    app.router.add_get("/missing", _missing)
    app.router.add_get("/unicode-id", _unicode_id)
    routes: dict[str, Script] = {
        "ping-first": [{"type": "ping"}, _ACK, _WAIT, _MINE, _DONE],
        "pings-no-ack": [{"type": "ping"}, {"type": "pong"}, {"type": "ping"}],
        "other-complete": [_ACK, _WAIT, {"id": "9", "type": "complete"}, _MINE, _DONE],
        "other-next": [
            _ACK,
            _WAIT,
            {"id": "9", "type": "next", "payload": {"data": {"x": 9}}},
            _DONE,
        ],
        "next-without-id": [_ACK, _WAIT, {"type": "next", "payload": {"data": {"x": 9}}}, _DONE],
        "other-error": [_ACK, _WAIT, {"id": "9", "type": "error", "payload": [{"x": 1}]}, _DONE],
    }
    for name, script in routes.items():
        app.router.add_get(f"/gql/{name}", _gql(script))
    live = app[PEER] = Peer()
    async for _runner, url in _serve(app):
        live.url = url
        yield live


async def _first_event(client: FlextApiClient, path: str) -> tuple[ServerSentEvent, int]:
    async with client.sse("GET", path, max_reconnects=3) as events:
        async for event in events:
            return event, events.connections
    raise AssertionError("the stream ended without an event")


# -- SSE ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [503, 429])
async def test_retry_after_of_a_refusal_is_the_reconnect_wait(peer: Peer, status: int) -> None:
    """A 503/429 with ``Retry-After: 7`` (the client's retries off) makes the stream
    wait those 7 s before it reconnects, not the shorter backoff."""
    clock = FakeClock()
    config = ClientConfig(retry=RetryConfig(max_retries=0))
    async with FlextApiClient(peer.url, config=config, clock=clock) as client:
        event, connections = await _first_event(client, f"/{status}")
    assert (event.data, connections) == ("ok", 2)
    assert clock.sleeps == [7.0]


async def test_retry_after_is_ignored_when_the_retry_config_says_so(peer: Peer) -> None:
    """``respect_retry_after=False`` keeps the backoff alone (below 7 s at first)."""
    clock = FakeClock()
    config = ClientConfig(retry=RetryConfig(max_retries=0, respect_retry_after=False))
    async with FlextApiClient(peer.url, config=config, clock=clock) as client:
        await _first_event(client, "/503")
    assert len(clock.sleeps) == 1 and clock.sleeps[0] < 7.0


async def test_a_5xx_on_a_client_not_failing_on_status_is_reconnected(peer: Peer) -> None:
    """A client built with ``fail_on_http_error=False`` still reconnects after a 503
    (before, the HTML body failed the stream as "not text/event-stream")."""
    config = ClientConfig(retry=RetryConfig(max_retries=0), fail_on_http_error=False)
    async with FlextApiClient(peer.url, config=config, clock=FakeClock()) as client:
        event, connections = await _first_event(client, "/503")
    assert (event.data, connections) == ("ok", 2)


async def test_a_4xx_on_a_client_not_failing_on_status_is_http_status(peer: Peer) -> None:
    """A 404 fails the stream with HTTP_STATUS (its status kept), not PROTOCOL_ERROR,
    also on a client built with ``fail_on_http_error=False``; no reconnect."""
    config = ClientConfig(fail_on_http_error=False)
    async with FlextApiClient(peer.url, config=config) as client:
        events = client.sse("GET", "/missing")
        with pytest.raises(FlextApiError) as caught:
            async for _event in events:
                pass
    assert caught.value.code is ErrorCode.HTTP_STATUS
    assert caught.value.response is not None and caught.value.response.status_code == 404
    assert events.error is caught.value and peer.hits["/missing"] == 1


async def test_a_server_id_that_cannot_be_echoed_fails_resume_as_protocol_error(
    peer: Peer,
) -> None:
    """An event ID that is not ASCII is delivered; resuming from it (a header must be
    ASCII) fails with PROTOCOL_ERROR naming the server's ID, not INVALID_REQUEST about
    headers the caller never set; no reconnect is sent without it."""
    received: list[ServerSentEvent] = []

    async def read(events: Any) -> None:
        async for event in events:
            received.append(event)

    async with FlextApiClient(peer.url) as client:
        events = client.sse("GET", "/unicode-id")
        with pytest.raises(FlextApiError) as caught:
            await read(events)
    assert [(e.id, e.data) for e in received] == [("caf\u00e9", "first")]
    assert caught.value.code is ErrorCode.PROTOCOL_ERROR
    assert caught.value.details["last_event_id"] == "caf\u00e9"
    assert events.error is caught.value and peer.hits["/unicode-id"] == 1


async def test_a_non_ascii_id_given_by_the_caller_stays_invalid_request(peer: Peer) -> None:
    """The caller's own ``last_event_id=`` that is not ASCII is the caller's bad input:
    INVALID_REQUEST, nothing sent."""
    async with FlextApiClient(peer.url) as client:
        events = client.sse("GET", "/unicode-id", last_event_id="\u00e9")
        with pytest.raises(FlextApiError) as caught:
            async for _event in events:
                pass
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert "/unicode-id" not in peer.hits


# -- graphql-transport-ws ----------------------------------------------------------------------
async def _subscribe(peer: Peer, name: str, **kw: Any) -> list[FlextResult[dict[str, Any]]]:
    async with FlextApiClient(peer.url, **kw) as http:
        gql = GraphQLClient(http, f"/gql/{name}")
        return [r async for r in gql.subscribe("subscription { x }")]


async def test_a_ping_before_the_ack_is_answered(peer: Peer) -> None:
    """The protocol allows ``ping`` at any time: one before ``connection_ack`` gets a
    pong and the subscription goes on (it used to end with PROTOCOL_ERROR)."""
    results = await _subscribe(peer, "ping-first")
    assert [r.value for r in results] == [{"x": 1}]
    assert peer.received[:3] == [
        {"type": "connection_init", "payload": {}},
        {"type": "pong"},
        {"id": "1", "type": "subscribe", "payload": {"query": "subscription { x }"}},
    ]


async def test_pings_without_an_ack_still_time_out(peer: Peer) -> None:
    """Pings do not extend the wait for ``connection_ack``: READ_TIMEOUT after the
    client's connect timeout."""
    results = await asyncio.wait_for(
        _subscribe(peer, "pings-no-ack", timeout=TimeoutConfig(connect=0.2)), 30
    )
    assert [r.error_code for r in results] == [ErrorCode.READ_TIMEOUT]
    assert {"type": "pong"} in peer.received


async def test_complete_for_another_id_does_not_end_the_subscription_silently(
    peer: Peer,
) -> None:
    """A ``complete`` for an operation this socket never started is a PROTOCOL_ERROR,
    not the quiet end of ours (which would lose the results still to come)."""
    results = await _subscribe(peer, "other-complete")
    assert [r.error_code for r in results] == [ErrorCode.PROTOCOL_ERROR]
    assert "'9'" in (results[0].error or "")


@pytest.mark.parametrize("name", ["other-next", "next-without-id", "other-error"])
async def test_a_result_for_another_operation_is_not_handed_over(peer: Peer, name: str) -> None:
    """A ``next`` or ``error`` for another id (or none) is a PROTOCOL_ERROR; its
    payload is never given to the caller as this subscription's."""
    results = await _subscribe(peer, name)
    assert [r.error_code for r in results] == [ErrorCode.PROTOCOL_ERROR]
    assert {"id": "1", "type": "complete"} in peer.received  # ours is ended on the server
