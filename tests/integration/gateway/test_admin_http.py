"""The admin API over HTTP on its own port, file-watch reload, and gateway-made answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
AUTH = {"Authorization": "Bearer t0ken"}


async def _get(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        body = await r.read()
        return r.status, (yaml.safe_load(body) if "json" in r.content_type else body)


async def test_admin_endpoints_over_http(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Ready, routes, reload and unknown paths answer on the admin port."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    base = gw.admin_url
    assert await _get(base + "/ready") == (200, {"ready": True})
    status, routes = await _get(base + "/admin/routes", headers=AUTH)
    assert status == 200 and routes[0]["name"] == "all"
    assert await _get(base + "/admin/reload", "POST", headers=AUTH) == (200, {"reloaded": True})
    assert (await _get(base + "/nope"))[0] == 404
    assert (await _get(base + "/admin/nope", headers=AUTH))[0] == 404
    status, _ = await _get(base + "/admin/clusters/svc/instances/ghost/drain", "POST", headers=AUTH)
    assert status == 404


async def test_file_change_reloads(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """Saving the config file applies it (watched, debounced)."""
    a, b = upstreams
    gw = run_gateway({**basic_config(a.url), "watch": True})
    await asyncio.sleep(0.5)  # let the watcher start before the edit
    assert gw.reloader is not None
    gw.reloader.path.write_text(yaml.safe_dump(basic_config(b.url)), encoding="utf-8")
    seen = ""
    for _ in range(300):
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo/w") as r:
            seen = r.headers["X-Upstream"]
        if seen == "b":
            break
        await asyncio.sleep(0.05)
    assert seen == "b"


async def test_draining_gateway_answers_503(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Once draining, new requests get 503 draining and readiness fails."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    gw.gateway.draining = True
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo/x") as r:
        assert (r.status, r.headers["X-Gateway-Reason"]) == (503, "draining")
    assert (await _get(gw.admin_url + "/ready"))[0] == 503
    assert (await _get(gw.admin_url + "/health"))[1]["status"] == "draining"


async def test_websocket_off_route_refused(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A route with websocket: false refuses upgrades with a typed 404."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url, websocket=False))
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await s.ws_connect(gw.url + "/ws")
    assert info.value.status == 404


async def test_breaker_opens_after_failures(run_gateway: Run) -> None:
    """After consecutive connect failures the instance's breaker opens: breaker_open."""
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        config = basic_config(f"http://127.0.0.1:{sock.getsockname()[1]}")
        config["clusters"][0]["breaker"] = {"consecutive_failures": 2}
        config["clusters"][0]["retry"] = {"retries": 0}
        gw = run_gateway(config)
        reasons = []
        async with aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.get(gw.url + "/echo/x") as r:
                    reasons.append(r.headers["X-Gateway-Reason"])
    assert reasons == ["connect_failure", "connect_failure", "breaker_open"]


async def test_total_timeout_is_typed_504(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upstream slower than the per-try timeout gives 504 upstream_timeout."""
    a, _ = upstreams
    config = basic_config(a.url)
    config["routes"][0]["timeouts"] = {"per_try": 0.2, "total": 5}
    config["routes"][0]["retry"] = {"retries": 0}
    gw = run_gateway(config)
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/slow?ms=3000") as r:
        assert (r.status, r.headers["X-Gateway-Reason"]) == (504, "upstream_timeout")
