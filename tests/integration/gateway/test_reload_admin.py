"""Hot reload and the admin API against a live gateway."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from flext_api.gateway._admin import AdminApp
from tests.integration.gateway.conftest import GatewayProcess, LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


async def _admin(
    admin: AdminApp, method: str, path: str, token: str | None = "t0ken"
) -> tuple[int, Any]:
    """Call the admin ASGI app in-process."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await admin(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    ctype = dict(sent[0]["headers"]).get(b"content-type", b"")
    return sent[0]["status"], (yaml.safe_load(body) if b"json" in ctype else body)


def _write(gw: LiveGateway, data: dict[str, Any]) -> None:
    assert gw.reloader is not None
    gw.reloader.path.write_text(yaml.safe_dump(data), encoding="utf-8")


async def test_invalid_config_refused_old_keeps_serving(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A reload of an invalid file is refused with its errors; the old config serves on."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    _write(gw, {**basic_config(a.url), "routes": [{"name": "x", "cluster": "nope"}]})
    status, body = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(_admin(gw.admin, "POST", "/admin/reload"), gw.loop)  # type: ignore[arg-type]
    )
    assert status == 409
    assert "routes[0].match" in body["error"]
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/echo/still") as r:
        assert r.status == 200


async def test_reload_under_load_and_websocket_survive(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Reloads under a steady request loop fail no request and close no WebSocket."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url))
    failures: list[int] = []
    done = asyncio.Event()

    async def load(session: aiohttp.ClientSession) -> int:
        count = 0
        while not done.is_set():
            async with session.get(gw.url + "/echo/load") as r:
                await r.read()
                if r.status != 200:
                    failures.append(r.status)
                count += 1
        return count

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url + "/ws")
        loaders = [asyncio.create_task(load(session)) for _ in range(4)]
        for n in range(6):
            urls = [a.url, b.url] if n % 2 == 0 else [b.url]
            _write(gw, basic_config(*urls))
            assert gw.reloader is not None
            result = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(gw.reloader.reload(), gw.loop)  # type: ignore[arg-type]
            )
            assert result.is_success, result.error
            await asyncio.sleep(0.05)
        done.set()
        counts = await asyncio.gather(*loaders)
        await ws.send_str("still open")
        assert (await ws.receive(timeout=30)).data == "still open"
        await ws.close()
    assert failures == []
    assert sum(counts) > 0
    assert b.hits("/echo/load") > 0  # the reloaded config did take effect


async def test_admin_requires_token(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """Admin endpoints answer 401 without the bearer token; /health needs none."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    call = gw.call
    assert call(_admin(gw.admin, "GET", "/admin/clusters", token=None))[0] == 401
    assert call(_admin(gw.admin, "GET", "/admin/clusters", token="wrong"))[0] == 401
    status, health = call(_admin(gw.admin, "GET", "/health", token=None))
    assert status == 200
    assert health["services"]["svc"] == {"healthy": 1, "total": 1, "status": "up"}


async def test_admin_drain_takes_instance_out(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A drained instance gets no new requests until it is enabled again."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url))
    b_id = f"127.0.0.1-{b.port}"
    status, _ = gw.call(_admin(gw.admin, "POST", f"/admin/clusters/svc/instances/{b_id}/drain"))
    assert status == 200
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.get(gw.url + "/echo/d") as r:
                assert r.headers["X-Upstream"] == "a"
    status, clusters = gw.call(_admin(gw.admin, "GET", "/admin/clusters"))
    states = {row["id"]: row["state"] for row in clusters[0]["instances"]}
    assert states[b_id] == "drained"
    gw.call(_admin(gw.admin, "POST", f"/admin/clusters/svc/instances/{b_id}/enable"))
    async with aiohttp.ClientSession() as session:
        seen = set()
        for _ in range(6):
            async with session.get(gw.url + "/echo/e") as r:
                seen.add(r.headers["X-Upstream"])
    assert seen == {"a", "b"}


async def test_admin_config_redacts_token(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The config dump never contains the admin token."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    status, body = gw.call(_admin(gw.admin, "GET", "/admin/config"))
    assert status == 200
    assert "t0ken" not in str(body)
    assert body["clusters"][0]["name"] == "svc"


async def test_metrics_labelled_by_route_not_path(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Many distinct paths make one series per route, never one per path."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            async with session.get(gw.url + f"/echo/item-{n}") as r:
                assert r.status == 200
    _, text = gw.call(_admin(gw.admin, "GET", "/metrics", token=None))
    lines = [
        line for line in text.decode().splitlines() if line.startswith("gateway_requests_total")
    ]
    assert lines == [
        'gateway_requests_total{cluster="svc",reason="",route="all",status_class="2xx"} 5.0'
    ]
    assert "item-" not in text.decode()


async def test_sigterm_drains_in_flight_and_closes_websockets(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    """On SIGTERM every accepted request completes and WebSockets close with 1001."""
    a, _ = upstreams
    config = _without_admin(basic_config(a.url))
    gw = GatewayProcess(config, tmp_path)
    try:
        gw.wait_ready()
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(gw.url + "/ws")

            async def slow() -> int:
                async with session.get(gw.url + "/slow?ms=1500") as r:
                    await r.read()
                    return r.status

            requests = [asyncio.create_task(slow()) for _ in range(8)]
            for _ in range(1000):
                if a.hits("/slow") == 8:
                    break
                await asyncio.sleep(0.01)
            assert a.hits("/slow") == 8
            gw.process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=30)
            statuses = await asyncio.gather(*requests)
        assert statuses == [200] * 8
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        gw.process.wait(30)
    finally:
        gw.stop()


def test_ctrl_c_stops_the_gateway_cleanly(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    """SIGINT drains and stops with status 0 and no traceback: uvicorn raises the signal
    again after its shutdown, which asyncio.Runner's handler turned into a cancelled
    clean-up and a KeyboardInterrupt traceback (every Ctrl-C of ``make run``)."""
    a, _ = upstreams
    gw = GatewayProcess(_without_admin(basic_config(a.url)), tmp_path)
    try:
        gw.wait_ready()
        gw.process.send_signal(signal.SIGINT)
        assert gw.process.wait(30) == 0, gw.log.read_text()
    finally:
        gw.stop()
    assert "Traceback" not in gw.log.read_text()


def _without_admin(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with no admin section: the child process opens no admin port (the
    default 9901 may be taken on the machine)."""
    return {key: value for key, value in config.items() if key != "admin"}
