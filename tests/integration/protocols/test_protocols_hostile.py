"""Second pass of hostile probes: an event stream that passes its bound in its last
chunk, and subscriptions sent over HTTP to the factory's GraphQL mount."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from flext_api import ErrorCode, FlextApiClient, FlextApiError
from flext_api.protocols import EventSource
from flext_api.server import GraphQLMount, ServerConfig, create_fastapi_app, make_json_logger
from tests.server.helpers import records
from tests.server.live import LiveServer

from .conftest import LIVE, _serve
from .conftest import LiveServer as AioServer
from .graphql_app import schema

pytestmark = pytest.mark.integration

EVENT_THEN_TOO_LARGE = b"id: 1\ndata: a\n\ndata: " + b"x" * 500


# -- SSE: the bound passed in the stream's last chunk --------------------------------------
async def _ends(request: web.Request) -> web.Response:
    """One event and the start of an event past the bound, in one body; then the end."""
    request.app[LIVE].connections += 1
    return web.Response(body=EVENT_THEN_TOO_LARGE, content_type="text/event-stream")


async def _cut(request: web.Request) -> web.StreamResponse:
    """The same bytes in one write, then the connection is cut."""
    request.app[LIVE].connections += 1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(EVENT_THEN_TOO_LARGE)
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.fixture
async def oversized() -> AsyncIterator[AioServer]:
    app = web.Application()
    app.router.add_get("/ends", _ends)
    app.router.add_get("/cut", _cut)
    live = app[LIVE] = AioServer("")
    async for _runner, url in _serve(app):
        live.url = url
        yield live


@pytest.mark.parametrize("path", ["/ends", "/cut"])
async def test_bound_passed_in_the_last_chunk_fails_the_stream(
    oversized: AioServer, path: str
) -> None:
    """An event past ``max_event_size`` in the chunk that also completed an event, the
    stream then ending or cut: PROTOCOL_ERROR after that event, no reconnect. The
    parser held the error for its next feed, which never came: the stream reconnected
    and replayed the same events for ever (each one reset ``max_reconnects``)."""
    seen: list[str] = []

    async def read(events: EventSource) -> None:
        async with events:
            async for event in events:
                seen.append(event.data)
                if len(seen) > 3:  # the old loop never ends: stop it
                    break

    async with FlextApiClient(oversized.url) as client:
        events = client.sse("GET", path, max_event_size=100, max_reconnects=5)
        with pytest.raises(FlextApiError) as info:
            await read(events)
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert "max_event_size" in str(info.value)
    assert events.error is info.value
    assert seen == ["a"]
    assert oversized.connections == 1


# -- GraphQL: subscriptions over HTTP --------------------------------------------------------
class Mounted:
    def __init__(self, *, allow_get: bool) -> None:
        self.log = io.StringIO()
        app = create_fastapi_app(
            ServerConfig(),
            graphql=GraphQLMount(schema, allow_get=allow_get),
            logger=make_json_logger(self.log),
        )
        self.live = LiveServer(app).start()
        self.url = self.live.url + "/graphql"


@pytest.fixture(params=[False, True], ids=["get-off", "get-on"])
def mounted(request: pytest.FixtureRequest) -> Iterator[Mounted]:
    server = Mounted(allow_get=request.param)
    try:
        yield server
    finally:
        server.live.stop()


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_subscription_over_http_is_refused(mounted: Mounted, method: str) -> None:
    """A subscription sent by POST or GET is a 400 problem naming the method, and its
    resolver does not run: strawberry ran it as a plain field (over GET too, with GET
    off), answered "Unexpected error." and logged a resolver crash per request."""
    subscription = {"query": "subscription { ticks }"}
    async with aiohttp.ClientSession() as session:
        if method == "POST":
            sent = session.post(mounted.url, json=subscription)
        else:
            sent = session.get(mounted.url, params=subscription)
        async with sent as response:
            status, ctype = response.status, response.headers["content-type"]
            body = await response.json(content_type=None)
    assert status == 400
    assert ctype == "application/problem+json"
    assert body["detail"] == f"subscriptions are not allowed when using {method}"
    assert records(mounted.log, "graphql resolver error") == []


async def test_queries_and_mutations_still_run_over_post(mounted: Mounted) -> None:
    """Refusing subscriptions leaves the other operation types as they were."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(mounted.url, json={"query": "{ hello }"}) as response,
    ):
        assert response.status == 200
        assert await response.json() == {"data": {"hello": "hello world"}}
