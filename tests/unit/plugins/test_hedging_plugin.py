"""HedgingPlugin: hedges safe requests only; losers are cancelled and closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flext_api import FlextResult, HttpRequest, HttpResponse
from flext_api.client.plugins import HedgingPlugin
from flext_api.resilience import HedgeStarted, ResilienceEvent
from flext_api.testing import FakeClock

from ._fakes import TrackedResponse, Upstream, get, post


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class SlowFirst:
    """Attempt 0 hangs until released; later attempts answer at once."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.release_first = asyncio.Event()
        self.first_cancelled = False
        self.responses: list[TrackedResponse] = []

    async def __call__(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        self.requests.append(request)
        response = TrackedResponse(200, request=request)
        self.responses.append(response)
        if len(self.requests) == 1:
            try:
                await self.release_first.wait()
            except asyncio.CancelledError:
                self.first_cancelled = True
                raise
        return FlextResult.ok(response)


async def test_a_slow_get_is_hedged_and_the_loser_cancelled() -> None:
    """After the delay a copy is sent; it wins and the slow original is cancelled."""
    clock = FakeClock(start=0.0, auto_advance=False)
    events: list[ResilienceEvent] = []
    plugin = HedgingPlugin(0.2, clock=clock, hooks=[events.append])
    upstream = SlowFirst()
    request = get()
    task = asyncio.create_task(plugin.handle(request, upstream))
    await settle()
    clock.advance(0.2)
    result = await task
    assert result.value is upstream.responses[1]
    assert upstream.first_cancelled
    hedged = upstream.requests[1]
    assert hedged is not request and hedged.extensions["hedge"] == 1
    assert events == [HedgeStarted("api.example.com", 1, 0.2)]


async def test_a_loser_response_is_closed() -> None:
    """When both attempts answer, the losing response is closed."""
    clock = FakeClock(start=0.0, auto_advance=False)
    plugin = HedgingPlugin(0.2, clock=clock)
    upstream = SlowFirst()
    task = asyncio.create_task(plugin.handle(get(), upstream))
    await settle()
    upstream.release_first.set()
    clock.advance(0.2)
    result = await task
    winner = result.value
    assert isinstance(winner, TrackedResponse)
    losers = [r for r in upstream.responses if r is not winner]
    assert all(r.closed for r in losers) and not winner.closed


async def test_post_without_idempotency_key_is_not_hedged() -> None:
    """An unsafe request passes straight through, once."""
    plugin = HedgingPlugin(0.0, clock=FakeClock())
    upstream = Upstream([200])
    await plugin.handle(post(), upstream)
    assert upstream.calls == 1


async def test_post_with_idempotency_key_is_hedged() -> None:
    """An Idempotency-Key makes a POST safe to hedge."""
    clock = FakeClock(start=0.0, auto_advance=False)
    plugin = HedgingPlugin(0.1, clock=clock)
    upstream = SlowFirst()
    task = asyncio.create_task(plugin.handle(post(headers={"Idempotency-Key": "k"}), upstream))
    await settle()
    clock.advance(0.1)
    assert (await task).is_success
    assert len(upstream.requests) == 2


async def test_a_post_the_caller_marks_idempotent_is_hedged() -> None:
    """``extensions["idempotent"]`` (a GraphQL query over POST) makes a POST safe to
    hedge, as it makes it safe to retry."""
    clock = FakeClock(start=0.0, auto_advance=False)
    plugin = HedgingPlugin(0.1, clock=clock)
    upstream = SlowFirst()
    request = post()
    request.extensions["idempotent"] = True
    task = asyncio.create_task(plugin.handle(request, upstream))
    await settle()
    clock.advance(0.1)
    assert (await task).is_success
    assert len(upstream.requests) == 2


async def test_a_streamed_body_is_not_hedged() -> None:
    """A one-shot body cannot be sent twice, so it is never hedged."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    plugin = HedgingPlugin(0.0, clock=FakeClock())
    upstream = Upstream([200])
    await plugin.handle(HttpRequest("PUT", "http://h/x", stream=body()), upstream)
    assert upstream.calls == 1


def test_invalid_settings_and_repr() -> None:
    """A negative delay or fewer than one hedge is a ValueError; the repr shows both."""
    with pytest.raises(ValueError):
        HedgingPlugin(-1.0)
    with pytest.raises(ValueError):
        HedgingPlugin(1.0, max_hedged=0)
    assert repr(HedgingPlugin(0.25, max_hedged=2)) == "<HedgingPlugin delay=0.25s max_hedged=2>"


@pytest.mark.parametrize("key", ["", "   "])
async def test_post_with_a_blank_idempotency_key_is_not_hedged(key: str) -> None:
    """A blank key is no key (no server can deduplicate on it): as for retries, a slow
    POST is sent once, never twice."""
    clock = FakeClock(start=0.0, auto_advance=False)
    plugin = HedgingPlugin(0.1, clock=clock)
    upstream = SlowFirst()
    task = asyncio.create_task(plugin.handle(post(headers={"Idempotency-Key": key}), upstream))
    await settle()
    clock.advance(0.1)
    await settle()
    upstream.release_first.set()
    assert (await task).is_success
    assert len(upstream.requests) == 1
