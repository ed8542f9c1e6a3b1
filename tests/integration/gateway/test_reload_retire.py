"""Reloads against a real upstream: one prober after many reloads, and a replaced pool
closed once the SSE stream it carries ends, never before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import yaml

from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


def _reload(gw: LiveGateway, data: dict[str, Any]) -> None:
    """Write ``data`` to the gateway's file and reload it as SIGHUP would."""
    assert gw.reloader is not None
    gw.reloader.path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert gw.call(gw.reloader.reload()).is_success


def _with(data: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {**data, "clusters": [{**data["clusters"][0], **cluster}]}


async def _event(response: aiohttp.ClientResponse) -> bytes:
    async with asyncio.timeout(30):
        return await response.content.readuntil(b"\n\n")


async def test_reloads_that_rebuild_health_leave_one_prober(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Eight reloads that change the health settings: the upstream ends up probed over
    one connection by one prober (each reload left the previous prober running, so
    probes came from nine of them, and nine connections stayed open)."""
    a, _ = upstreams
    data = basic_config(a.url)

    def health(threshold: int) -> dict[str, Any]:
        return _with(data, health={"interval": 0.1, "healthy_threshold": threshold})

    gw = run_gateway(health(2))
    assert await eventually(lambda: len(a.probe_ports) >= 2)
    for threshold in range(3, 11):
        _reload(gw, health(threshold))
    mark = len(a.probe_ports)

    def one_prober() -> bool:
        recent = a.probe_ports[mark:][-10:]
        return len(recent) == 10 and len(set(recent)) == 1 and a.open_connections() == 1

    assert await eventually(one_prober), (a.probe_ports[mark:][-10:], a.open_connections())


async def test_a_replaced_pool_closes_once_the_stream_on_it_ends(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A reload that changes the pool and the health settings: an SSE stream begun before
    it keeps flowing on the old pool, new requests use the new one, and the old pool's
    connections, the idle one too, are closed once the stream ends (they stayed open
    until shutdown)."""
    a, _ = upstreams
    # Idle connections kept far longer than the test: only a close can end them.
    pool = {"keepalive_expiry": 600}
    data = _with(basic_config(a.url), health={"active": False}, pool=pool)
    gw = run_gateway(data)
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/sse") as stream:
        a.release("one")
        assert await _event(stream) == b"data: one\n\n"
        async with session.get(gw.url + "/echo/before") as response:
            assert response.status == 200  # a second connection, idle in the old pool
        old = gw.gateway.snapshot.clusters["svc"].transport
        _reload(
            gw,
            _with(
                data,
                pool={**pool, "max_connections": 50},
                health={"active": False, "passive": {"consecutive_5xx": 7}},
            ),
        )
        assert gw.gateway.snapshot.clusters["svc"].transport is not old
        async with session.get(gw.url + "/echo/after") as response:
            assert response.status == 200
        a.release("two")
        assert await _event(stream) == b"data: two\n\n"  # not cut by the reload
        # The old pool's two (the stream's, an idle one), the new pool's one.
        assert a.open_connections() == 3
        a.release("end")
        async with asyncio.timeout(30):
            assert await stream.content.read() == b""
    assert await eventually(lambda: a.open_connections() == 1), a.open_connections()
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/echo/x") as response:
        assert response.status == 200
