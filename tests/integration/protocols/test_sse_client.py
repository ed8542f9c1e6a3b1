"""``client.sse``: resumable event streams against a real aiohttp SSE server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api import (
    ClientConfig,
    ErrorCode,
    FlextApiClient,
    FlextApiError,
    FlextApiPlugin,
    FlextResult,
    HttpRequest,
    PoolConfig,
    TimeoutConfig,
)
from flext_api.protocols import ServerSentEvent
from flext_api.testing import FakeClock

from .conftest import LiveServer

pytestmark = pytest.mark.integration


async def _take(client: FlextApiClient, url: str, n: int, **kw: Any) -> list[ServerSentEvent]:
    events: list[ServerSentEvent] = []
    async with client.sse("GET", url, **kw) as stream:
        async for event in stream:
            events.append(event)
            if len(events) == n:
                break
    return events


async def test_reconnect_resumes_after_last_event_id(sse_server: LiveServer) -> None:
    """After a cut, the stream reconnects with Last-Event-ID and misses no event."""
    async with FlextApiClient(sse_server.url) as client:
        events = await _take(client, "/events", 9)
    assert [e.data for e in events] == [str(n) for n in range(1, 10)]
    assert sse_server.last_event_ids == [None, "3", "6"]


async def test_events_carry_type_and_id(sse_server: LiveServer) -> None:
    """Each event has the server's event type and ID."""
    async with FlextApiClient(sse_server.url) as client:
        (event,) = await _take(client, "/events", 1)
    assert (event.event, event.id, event.data) == ("tick", "1", "1")


async def test_servers_retry_is_remembered(sse_server: LiveServer) -> None:
    """The server's ``retry:`` becomes the stream's reconnection time."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/events")
        async for _event in stream:
            break
    assert stream.retry == 0.005


async def test_idle_timeout_reconnects(sse_server: LiveServer) -> None:
    """A silent stream past the idle timeout is dropped and resumed."""
    async with FlextApiClient(sse_server.url) as client:
        events = await _take(client, "/events?stall=1", 4, idle_timeout=0.3)
    assert [e.id for e in events] == ["1", "2", "3", "4"]
    assert sse_server.last_event_ids[1] == "3"


async def test_no_content_stops_the_stream(sse_server: LiveServer) -> None:
    """A 204 answer ends the stream without reconnecting."""
    async with FlextApiClient(sse_server.url) as client:
        events = await _take(client, "/done", 1)
    assert (events, sse_server.connections) == ([], 1)


async def test_wrong_content_type_raises_protocol_error(sse_server: LiveServer) -> None:
    """An answer that is not text/event-stream raises PROTOCOL_ERROR."""
    async with FlextApiClient(sse_server.url) as client:
        with pytest.raises(FlextApiError) as info:
            await _take(client, "/json", 1)
    assert info.value.code is ErrorCode.PROTOCOL_ERROR


async def test_exhausted_reconnects_raise_last_error(sse_server: LiveServer) -> None:
    """With reconnects exhausted, iterating raises the connection's error."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/missing", max_reconnects=1)
        with pytest.raises(FlextApiError) as info:
            async for _event in stream:
                pass
    assert info.value.code is ErrorCode.HTTP_STATUS and stream.error is info.value


async def test_last_event_id_can_be_given(sse_server: LiveServer) -> None:
    """``last_event_id`` resumes from a known point on the first connection."""
    async with FlextApiClient(sse_server.url) as client:
        (event,) = await _take(client, "/events", 1, last_event_id="41")
    assert (event.id, sse_server.last_event_ids[0]) == ("42", "41")


async def test_close_while_iterating_stops(sse_server: LiveServer) -> None:
    """aclose() inside the loop ends the iteration after the current event."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/events")
        seen = []
        async for event in stream:
            seen.append(event.id)
            await stream.aclose()
    assert seen == ["1"] and stream.is_closed


async def test_repr_and_last_event_id(sse_server: LiveServer) -> None:
    """The stream shows its request, state, connections and last ID."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/events")
        async for _event in stream:
            break
    assert stream.last_event_id == "1"
    assert repr(stream) == "<EventSource GET /events open [connections: 1, last_event_id: '1']>"


async def test_client_error_status_fails_without_reconnecting(sse_server: LiveServer) -> None:
    """A 404 fails the stream at once (WHATWG), however many reconnects are allowed."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/missing")
        with pytest.raises(FlextApiError) as info:
            async for _event in stream:
                pass
    assert info.value.code is ErrorCode.HTTP_STATUS and stream.connections == 1


async def test_bad_url_fails_without_reconnecting(sse_server: LiveServer) -> None:
    """A URL that cannot be requested fails INVALID_REQUEST on the first attempt."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "http://[::1")
        with pytest.raises(FlextApiError) as info:
            async for _event in stream:
                pass
    assert info.value.code is ErrorCode.INVALID_REQUEST and stream.connections == 1


async def test_service_url_streams_from_a_registered_instance(sse_server: LiveServer) -> None:
    """``sse("GET", "service://NAME/path")`` goes through the client's discovery stage,
    reconnects included."""
    from flext_api.discovery import ServiceInstance, ServiceRegistry

    registry = ServiceRegistry()
    inst = ServiceInstance(id="live", name="events", url=sse_server.url)
    (await registry.register("events", inst)).unwrap()
    async with FlextApiClient(registry=registry) as client:
        events = await _take(client, "service://events/events", 9)
    assert [e.data for e in events] == [str(n) for n in range(1, 10)]
    assert sse_server.last_event_ids == [None, "3", "6"]
    await registry.aclose()


async def test_an_event_past_max_event_size_fails_without_reconnecting(
    sse_server: LiveServer,
) -> None:
    """A line that never ends: the event before it arrives, then PROTOCOL_ERROR, once."""
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/endless", max_event_size=1024 * 1024)
        seen: list[str] = []

        async def read() -> None:
            async for event in stream:
                seen.append(event.data)

        with pytest.raises(FlextApiError) as info:
            await read()
    assert seen == ["first"]
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert "max_event_size" in info.value.message
    assert stream.error is info.value
    assert sse_server.connections == 1  # it would come again: no reconnect


async def test_max_event_size_must_be_a_positive_int(sse_server: LiveServer) -> None:
    async with FlextApiClient(sse_server.url) as client:
        for bad in (0, -1, 2.5, "1"):
            stream = client.sse("GET", "/events", max_event_size=bad)  # type: ignore[arg-type]
            with pytest.raises(FlextApiError) as info:
                await anext(aiter(stream))
            assert info.value.code is ErrorCode.INVALID_REQUEST
    assert sse_server.connections == 0


async def test_aclose_gives_the_connection_back(sse_server: LiveServer) -> None:
    """aclose() on an open stream releases its connection at once: with a pool of one,
    the next request gets it (it used to wait for the pool and fail POOL_TIMEOUT)."""
    pool = PoolConfig(max_connections=1, max_keepalive=1)
    async with FlextApiClient(sse_server.url, config=ClientConfig(pool=pool)) as client:
        stream = client.sse("GET", "/events?stall=1")
        first = await anext(aiter(stream))
        await stream.aclose()
        in_use = client.stats()["pool"]["in_use"]
        after = await client.get("/json")
    assert first.id == "1" and stream.is_closed and in_use == 0
    assert after.value.json() == {"a": 1}


async def test_aclose_from_another_task_ends_the_iteration(sse_server: LiveServer) -> None:
    """aclose() while another task waits for the next chunk ends that iteration and
    releases the connection."""
    seen: list[str] = []
    async with FlextApiClient(sse_server.url) as client:
        stream = client.sse("GET", "/events?stall=1")

        async def read() -> None:
            async for event in stream:
                seen.append(event.id)

        reader = asyncio.create_task(read())
        for _ in range(600):  # the three events, then the server is silent
            if len(seen) == 3:
                break
            await asyncio.sleep(0.05)
        await stream.aclose()
        await asyncio.wait_for(reader, 30)
        in_use = client.stats()["pool"]["in_use"]
    assert seen == ["1", "2", "3"] and in_use == 0 and stream.error is None


class _SeeTimeouts(FlextApiPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[TimeoutConfig | None] = []

    def before_request(self, request: HttpRequest) -> FlextResult[HttpRequest]:
        self.timeouts.append(request.timeout)
        return FlextResult.ok(request)


async def test_stream_uses_the_clients_timeouts(sse_server: LiveServer) -> None:
    """Connect, write and pool timeouts are the client's ``timeout=`` (not the config's
    defaults); read is the idle timeout and there is no total."""
    seen = _SeeTimeouts()
    timeout = TimeoutConfig(connect=1.5, read=2.5, write=3.5, pool=4.5, total=5.5)
    async with FlextApiClient(sse_server.url, timeout=timeout, plugins=[seen]) as client:
        await _take(client, "/events", 1, idle_timeout=7)
    assert seen.timeouts == [TimeoutConfig(connect=1.5, read=7, write=3.5, pool=4.5, total=None)]


async def test_streams_timeout_option_wins(sse_server: LiveServer) -> None:
    """A ``timeout=`` given to ``client.sse`` sets that stream's connect/write/pool."""
    seen = _SeeTimeouts()
    async with FlextApiClient(sse_server.url, timeout=9, plugins=[seen]) as client:
        await _take(client, "/events", 1, idle_timeout=None, timeout=2)
    assert seen.timeouts == [TimeoutConfig(connect=2, read=None, write=2, pool=2, total=None)]


async def test_a_stream_cut_inside_an_event_resumes_before_it(sse_server: LiveServer) -> None:
    """An event cut before its empty line is not delivered, and the reconnect's
    Last-Event-ID is the last *delivered* one, so the server sends that event again."""
    async with FlextApiClient(sse_server.url) as client:
        events = await _take(client, "/torn", 3)
    assert [e.data for e in events] == ["1", "2", "3"]
    assert sse_server.last_event_ids[:2] == [None, "1"]


async def test_aclose_during_the_reconnect_wait_ends_the_iteration(
    sse_server: LiveServer,
) -> None:
    """aclose() from another task while the stream waits to reconnect ends that
    iteration at once (with a clock that never moves, it used to wait for ever)."""
    clock = FakeClock(auto_advance=False)
    seen: list[str] = []
    async with FlextApiClient(sse_server.url, clock=clock) as client:
        stream = client.sse("GET", "/events")

        async def read() -> None:
            async for event in stream:
                seen.append(event.id)

        reader = asyncio.create_task(read())
        for _ in range(3000):  # the three events, the cut, then the reconnect's wait
            if clock.sleeps:
                break
            await asyncio.sleep(0.01)
        await stream.aclose()
        await asyncio.wait_for(reader, 30)
    assert seen == ["1", "2", "3"] and clock.sleeps and sse_server.connections == 1
    assert stream.error is None
