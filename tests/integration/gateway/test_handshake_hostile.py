"""Against the real listener: WebSocket handshakes held to a request's Host rules, the
headers a client may not pass upstream (httpoxy's ``Proxy``, the forwarding headers
frameworks pick the path from), and the ``Via`` list of a response."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]

_UPGRADE = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _head(port: int, request: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Send ``request`` on a fresh connection: the answer's status and (lower-case) headers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(b" ")[1]), headers


def _config(url: str, parser: str, **extra: Any) -> dict[str, Any]:
    return {**basic_config(url), "listeners": [{"parser": parser}], **extra}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "start",
    [
        b"GET /ws HTTP/1.1\r\nHost: a b\r\n",
        b"GET /ws HTTP/1.1\r\nHost: admin.example,x\r\n",
        b"GET /ws HTTP/1.1\r\nHost: www.example, admin.example\r\n",
        b'GET /ws HTTP/1.1\r\nHost: x";for=6.6.6.6;by="\r\n',
    ],
    ids=["space", "comma", "list", "quote"],
)
def test_a_handshake_with_a_host_that_is_no_host_is_refused(
    start: bytes, parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A handshake's Host is held to a request's rule: 400 bad_host, no upstream dialled."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    status, headers = _head(gw.port, start + _UPGRADE)
    assert (status, headers.get(b"x-gateway-reason")) == (400, b"bad_host")
    assert a.hits("/ws") == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_a_handshake_with_a_plain_host_is_still_proxied(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The same handshake with one sane Host switches and reaches the upstream."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    status, _ = _head(gw.port, b"GET /ws HTTP/1.1\r\nHost: www.example\r\n" + _UPGRADE)
    assert status == 101
    assert a.hits("/ws") == 1
    assert [v for k, v in a.requests[-1]["headers"] if k == "x-forwarded-host"] == ["www.example"]


_CLIENT_SENT = {
    "Proxy": "http://127.0.0.1:9",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/admin",
    "X-Forwarded-Server": "admin.internal",
    "X-Original-URL": "/admin/users",
    "X-Rewrite-URL": "/admin/users",
}


def _received(upstream: Upstream) -> dict[str, list[str]]:
    """The headers of ``upstream``'s last request, each name's values in order."""
    seen: dict[str, list[str]] = {}
    for name, value in upstream.requests[-1]["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


async def test_a_client_cannot_pass_proxy_or_path_forwarding_headers(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """From a client outside trusted_proxies, none of them reaches the upstream."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.get(gw.url + "/echo/x", headers=_CLIENT_SENT) as response,
    ):
        assert response.status == 200
    seen = _received(a)
    assert not {name.lower() for name in _CLIENT_SENT} & seen.keys()
    assert seen["x-forwarded-for"] == ["127.0.0.1"]


async def test_a_trusted_proxy_keeps_its_forwarding_headers_but_not_proxy(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A proxy in trusted_proxies is believed; ``Proxy`` is dropped even from it."""
    a, _ = upstreams
    gw = run_gateway({**basic_config(a.url), "trusted_proxies": ["127.0.0.1"]})
    async with (
        aiohttp.ClientSession() as session,
        session.get(gw.url + "/echo/x", headers=_CLIENT_SENT) as response,
    ):
        assert response.status == 200
    seen = _received(a)
    assert "proxy" not in seen
    kept = {name: value for name, value in _CLIENT_SENT.items() if name != "Proxy"}
    assert {name: seen.get(name.lower()) for name in kept} == {
        name: [value] for name, value in kept.items()
    }


async def test_a_handshake_cannot_pass_proxy_or_path_forwarding_headers(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A WebSocket upgrade's upstream sees none of them either."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", headers=_CLIENT_SENT) as ws,
    ):
        await ws.send_str("hi")
        assert (await ws.receive(timeout=30)).data == "hi"
    assert not {name.lower() for name in _CLIENT_SENT} & _received(a).keys()


@pytest.fixture
def two_via_upstream() -> Iterator[str]:
    """An upstream answering every request with two ``Via`` lines; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text="ok", headers=CIMultiDict([("Via", "1.0 edge-a"), ("Via", "1.1 edge-b")])
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()


async def test_a_response_via_list_ends_with_our_hop(
    two_via_upstream: str, run_gateway: Run
) -> None:
    """Two Via lines from the upstream reach the client as one list, ours last."""
    gw = run_gateway(basic_config(two_via_upstream))
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/x") as response:
        assert response.status == 200
        via = response.headers.getall("Via")
    assert via == ["1.0 edge-a, 1.1 edge-b, 1.1 flext-gateway"]
