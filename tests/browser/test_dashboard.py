"""The admin dashboard in a real headless Chromium (Debian ``chromium`` via playwright).

The page must load without a console error, show an instance going down within 2 s of
it being killed (the DOM is polled), and its charts must move under load. A screenshot
is saved to ``artifacts/dashboard.png`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn

from tests.integration.gateway.conftest import LiveGateway, run_gateway
from tests.integration.gateway.edge_origin import EdgeOrigin

pytestmark = pytest.mark.integration

__all__ = ["run_gateway"]

Run = Callable[[dict[str, Any]], LiveGateway]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-gpu"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _config(a: EdgeOrigin, b: EdgeOrigin) -> dict[str, Any]:
    health = {"interval": 0.2, "timeout": 0.5, "unhealthy_threshold": 1, "healthy_threshold": 1}
    return {
        "clusters": [
            {
                "name": "shop",
                "instances": [{"url": a.url, "id": "shop-a"}, {"url": b.url, "id": "shop-b"}],
                "health": health,
            }
        ],
        "routes": [
            {"name": "items", "match": {"path_prefix": "/c"}, "cluster": "shop", "cache": True},
            {"name": "echo", "match": {"path_prefix": "/echo"}, "cluster": "shop"},
        ],
        "admin": {"token": "t0ken"},
        "watch": False,
    }


@contextlib.asynccontextmanager
async def _admin_server(gw: LiveGateway) -> AsyncIterator[str]:
    """The gateway's admin app served by uvicorn on the gateway's own loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(gw.admin, log_level="warning", lifespan="off"))
    assert gw.loop is not None
    future = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), gw.loop)
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wrap_future(future)
        sock.close()


async def _load(url: str, stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session:
        i = 0
        while not stop.is_set():
            i += 1
            path = f"/c/item{i % 5}?cc=max-age=1" if i % 2 else "/echo"
            async with session.get(url + path) as response:
                await response.read()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
async def test_dashboard_live(run_gateway: Run) -> None:
    """Loads without console errors, shows a killed instance down within 2 s, charts move."""
    from playwright.async_api import async_playwright

    a, b = EdgeOrigin().start(), EdgeOrigin().start()
    stop = asyncio.Event()
    errors: list[str] = []
    before = moved = None
    try:
        gw = run_gateway(_config(a, b))
        async with _admin_server(gw) as admin, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(admin + "/dashboard#token=t0ken")
            await page.wait_for_selector('[data-instance="shop-b"][data-state="up"]')
            load = asyncio.create_task(_load(gw.url, stop))
            chart = '[data-route="items"] .chart-rps svg'
            await page.wait_for_selector(chart)
            before = await page.get_attribute(chart, "data-sum")
            # Polled from here: the page's CSP forbids the eval a JS predicate would need.
            for _ in range(300):
                if await page.get_attribute(chart, "data-sum") != before:
                    break
                await asyncio.sleep(0.05)
            moved = await page.get_attribute(chart, "data-sum")
            b.stop()
            await page.wait_for_selector(
                '[data-instance="shop-b"][data-state="down"]', timeout=2_000
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(
                path=str(ARTIFACTS / "dashboard.png"), full_page=True, caret="initial"
            )
            stop.set()
            await load
            await browser.close()
    finally:
        stop.set()
        a.stop()
        b.stop()
    assert moved != before
    assert errors == []
