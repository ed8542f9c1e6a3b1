"""``max_request_body``: a request body past the bound is a 413 and reaches no upstream whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from flext_api.gateway import GatewayConfig
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
LIMIT = 64 * 1024


def _config(url: str, transport: str, **route: Any) -> dict[str, Any]:
    config = basic_config(url, **route)
    config["clusters"][0]["transport"] = transport
    config["clusters"][0]["max_request_body"] = LIMIT
    return config


async def _post(url: str, data: Any) -> tuple[int, str | None, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status, response.headers.get("X-Gateway-Reason"), await response.read()


async def _chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"c" * size


@pytest.mark.parametrize("transport", ["h1", "aiohttp"])
async def test_declared_length_past_the_bound_is_413_before_any_upstream(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, transport: str
) -> None:
    """Content-Length over the bound: 413 ``body_too_large``, the upstream never asked."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, transport))
    status, reason, body = await _post(gw.url + "/upload", b"x" * (LIMIT + 1))
    assert (status, reason) == (413, "body_too_large")
    assert b"body_too_large" in body
    assert a.hits("/upload") == 0
    status, _, body = await _post(gw.url + "/upload", b"x" * LIMIT)  # at the bound: passes
    assert status == 200
    assert body == b'{"received": %d}' % LIMIT


@pytest.mark.parametrize("transport", ["h1", "aiohttp"])
async def test_chunked_body_past_the_bound_is_cut_with_413(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, transport: str
) -> None:
    """A chunked body (no length announced) is cut at the bound: 413, and the upstream
    never receives it whole; the instance is not blamed (the next request passes)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, transport))
    status, reason, _ = await _post(gw.url + "/upload", _chunks(4 * LIMIT))
    assert (status, reason) == (413, "body_too_large")
    assert all(r["body_length"] < 4 * LIMIT for r in a.requests if r["path"] == "/upload")
    status, _, body = await _post(gw.url + "/upload", _chunks(LIMIT))
    assert status == 200
    assert body == b'{"received": %d}' % LIMIT


async def test_a_route_overrides_the_cluster_bound(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """``max_request_body`` on the route wins over the cluster's (here: a larger one)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, "h1", max_request_body=4 * LIMIT))
    status, _, body = await _post(gw.url + "/upload", b"x" * (2 * LIMIT))
    assert status == 200
    assert body == b'{"received": %d}' % (2 * LIMIT)


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_request_body"):
        GatewayConfig.model_validate(_config("http://127.0.0.1:9", "h1", max_request_body=-1))


@pytest.mark.parametrize("transport", ["h1", "aiohttp"])
async def test_clients_gone_mid_body_do_not_eject_the_instance(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, transport: str
) -> None:
    """Clients that hang up while sending their body are not the instance's failures: six
    of them (passive ejection after 5 gateway errors) leave it in rotation. On aiohttp
    the body's error came wrapped and counted as a connect failure."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, transport))
    host, port = gw.url.removeprefix("http://").split(":")
    for _ in range(6):
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"400\r\n" + b"p" * 0x400 + b"\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.05)  # the gateway is streaming the body upstream
        writer.transport.abort()
        await asyncio.sleep(0.05)
    status, reason, _ = await _post(gw.url + "/upload", b"ok")
    assert (status, reason) == (200, None)
