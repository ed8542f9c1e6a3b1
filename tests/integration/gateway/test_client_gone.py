"""A client that leaves before its response head: the upstream exchange is given up.

nginx (``proxy_ignore_client_abort off``, its default) and Envoy close the upstream
connection when the downstream one goes away before the answer; the gateway does the
same instead of holding an upstream connection (and its instance's work) for the rest of
``per_try``. Real listener, raw upstream that answers nothing and reports when its
connection is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import listening

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]
# Far past any bound below: an exchange given up before this is the client's leaving.
_PATIENT = {"connect": 5, "per_try": 600, "total": 600}


@dataclass
class _Silent:
    """An upstream that reads request heads and never answers."""

    url: str = ""
    arrived: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self.arrived.put(await reader.readuntil(b"\r\n\r\n"))
        except asyncio.IncompleteReadError:  # the gateway closed the connection
            self.closed.set()
        finally:
            writer.close()


def _config(upstream: _Silent, **listener: Any) -> dict[str, Any]:
    config = basic_config(upstream.url, timeouts=_PATIENT, retry={"retries": 0})
    config["clusters"][0]["health"] = {"active": False}  # only the clients' requests
    config["listeners"] = [listener]
    return config


def _requests(gw: LiveGateway, reason: str) -> float | None:
    return gw.gateway.metrics.registry.get_sample_value(
        "gateway_requests_total",
        {"route": "all", "cluster": "svc", "status_class": "4xx", "reason": reason},
    )


@pytest.mark.parametrize("parser", PARSERS)
async def test_a_client_gone_before_the_head_closes_the_upstream_connection(
    run_gateway: Run, parser: str
) -> None:
    """The upstream's connection is closed once the client's is, the request is counted
    as ``client_disconnect`` (499), and the gateway serves the next client."""
    async with listening(_Silent()) as upstream:
        gw = run_gateway(_config(upstream, parser=parser))
        _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(upstream.arrived.get(), 30)
        assert head.startswith(b"GET /slow HTTP/1.1\r\n")
        writer.close()
        await asyncio.wait_for(upstream.closed.wait(), 30)  # not per_try's 600 s
        for _ in range(500):  # counted on the gateway's loop, after the cancellation
            if _requests(gw, "client_disconnect") == 1.0:
                break
            await asyncio.sleep(0.01)
        assert _requests(gw, "client_disconnect") == 1.0
        assert gw.gateway.in_flight == 0
        # The attempt's counts are given back (a breaker's permit, the balancer's count).
        assert set(gw.gateway.snapshot.clusters["svc"].in_flight.values()) == {0}


async def test_a_client_gone_while_another_waits_leaves_the_other_alone(
    run_gateway: Run,
) -> None:
    """Only the exchange of the client that left is given up."""
    async with listening(_Silent()) as upstream:
        gw = run_gateway(_config(upstream))
        _, leaving = await asyncio.open_connection("127.0.0.1", gw.port)
        staying_reader, staying = await asyncio.open_connection("127.0.0.1", gw.port)
        leaving.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        staying.write(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        heads = {await asyncio.wait_for(upstream.arrived.get(), 30) for _ in range(2)}
        assert {h.split(b" ")[1] for h in heads} == {b"/a", b"/b"}
        leaving.close()
        await asyncio.wait_for(upstream.closed.wait(), 30)
        assert gw.gateway.in_flight == 1  # /b still waits for its answer
        assert not staying_reader.at_eof()
        staying.close()


async def test_a_client_gone_from_a_composite_route_cancels_its_backends(
    run_gateway: Run,
) -> None:
    """A composite route's backend calls are the request's work too: given up with it."""
    async with listening(_Silent()) as upstream:
        config = _config(upstream)
        config["routes"][0]["aggregate"] = {
            "backends": [{"key": "a", "cluster": "svc", "path": "/a", "timeout": 600}]
        }
        gw = run_gateway(config)
        _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(upstream.arrived.get(), 30)
        assert head.startswith(b"GET /a HTTP/1.1\r\n")
        writer.close()
        await asyncio.wait_for(upstream.closed.wait(), 30)  # not the backend's 600 s
        for _ in range(500):
            if gw.gateway.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert gw.gateway.in_flight == 0


async def test_an_attempt_past_the_routes_deadline_is_not_blamed_on_its_instance(
    run_gateway: Run,
) -> None:
    """The first instance used up the route's whole budget; the retry's instance was
    never sent anything, so its breaker is not told of a failure (it was, and opened:
    the next request found every breaker open and asked no one)."""
    async with listening(_Silent()) as one, listening(_Silent()) as two:
        config = _config(one)
        config["clusters"][0]["instances"].append({"url": two.url})
        config["clusters"][0]["breaker"] = {"minimum_calls": 1, "failure_ratio": 0.5}
        config["routes"][0]["timeouts"] = {"connect": 5, "per_try": 0.3, "total": 0.3}
        config["routes"][0]["retry"] = {"retries": 1, "budget_min_retries": 100}
        gw = run_gateway(config)
        assert await _status(gw.url + "/a") == 504  # one instance used the whole budget
        assert one.arrived.qsize() + two.arrived.qsize() == 1
        await _status(gw.url + "/b")  # the other instance's breaker is still closed
        assert (one.arrived.qsize(), two.arrived.qsize()) == (1, 1)


async def _status(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status
