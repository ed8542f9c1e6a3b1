"""The admin port, the dashboard stream, hot reload and WebSockets under a demanding
operator: shutdown with a dashboard open, secrets in URLs, wrong methods, a ConfigMap
symlink swap, upstreams that refuse or close a WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from flext_api.gateway import GatewayConfig
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
AUTH = {"Authorization": "Bearer t0ken"}


class _Records(logging.Handler):
    """The records of one logger (uvicorn's loggers do not reach the root's handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _asgi_errors() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn logs on ``uvicorn.error`` meanwhile (enter it once the gateway runs:
    uvicorn's logging config replaces that logger's handlers when a server is made)."""
    handler = _Records()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


async def test_an_open_dashboard_stream_ends_cleanly_at_shutdown(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A dashboard left open does not hold the shutdown: the stream sends a last
    "draining" snapshot and ends with its final chunk (it used to stay open until the
    admin server's 30 s grace period ran out, then was cut)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    url = gw.admin_url + "/dashboard/events?interval=10"
    async with asyncio.timeout(120):  # a hang guard, not a speed check
        async with aiohttp.ClientSession() as session, session.get(url, headers=AUTH) as r:
            first = await r.content.readuntil(b"\n\n")
            assert orjson.loads(first.removeprefix(b"data: "))["status"] == "serving"
            stopper = threading.Thread(target=gw.stop)
            stopper.start()
            rest = await r.content.read()  # raises ClientPayloadError on a cut stream
        await asyncio.to_thread(stopper.join, 60)
    events = [e for e in rest.split(b"\n\n") if e]
    assert events, "no snapshot after the shutdown began"
    assert orjson.loads(events[-1].removeprefix(b"data: "))["status"] == "draining"


async def test_a_handshake_the_upstream_refuses_is_relayed_and_no_failure(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upstream answering a WebSocket handshake with a 404 is up: the client gets the
    404, and no breaker opens nor instance is ejected however often clients try (each
    refusal used to count as a connect failure: a dozen upgrades to a path the upstreams
    do not serve opened every breaker and ejected an instance for all traffic)."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url))
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(12):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(gw.url + "/status/404")
            headers: Any = info.value.headers or {}
            statuses.append((info.value.status, headers.get("X-Gateway-Reason")))
        async with session.get(gw.admin_url + "/admin/clusters", headers=AUTH) as r:
            clusters = await r.json()
        async with session.get(gw.url + "/echo/after") as r:
            assert r.status == 200
    assert statuses == [(404, None)] * 12
    rows = clusters[0]["instances"]
    assert [(row["state"], row["breaker"]) for row in rows] == [("up", "closed")] * 2


async def test_a_handshake_answered_with_a_5xx_is_a_502_and_a_failure(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upstream answering the handshake with a 503 failed it: 502, counted against it."""
    a, _ = upstreams
    data = basic_config(a.url)
    data["clusters"][0]["breaker"] = {"consecutive_failures": 2}
    gw = run_gateway(data)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(gw.url + "/status/503")
            headers: Any = info.value.headers or {}
            assert (info.value.status, headers.get("X-Gateway-Reason")) == (502, "upstream_reset")
        async with session.get(gw.admin_url + "/admin/clusters", headers=AUTH) as r:
            clusters = await r.json()
    assert clusters[0]["instances"][0]["breaker"] == "open"


async def test_a_client_message_racing_the_upstream_close_is_no_asgi_error(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Messages a client sends while the upstream closes are dropped; the client gets
    the upstream's close code and reason, and nothing is logged as an ASGI exception
    (the write to the closing upstream used to raise out of the session)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    with _asgi_errors() as asgi_errors:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(gw.url + "/ws") as ws,
        ):
            await ws.send_str("close:4001:bye")
            for _ in range(200):
                if ws.closed:
                    break
                await ws.send_str("x" * 1000)
            msg = await ws.receive(timeout=30)
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 4001, "bye")
        assert await eventually(lambda: not gw.gateway.websockets)
    assert [r.getMessage() for r in asgi_errors if r.exc_info] == []


async def test_admin_config_never_shows_a_password_in_a_url(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Redis URLs carry passwords: /admin/config (and the routes, clusters and dashboard
    views) show them as **********, as the token (they were in clear). An instance URL
    cannot carry one at all (a config error, tests/unit/gateway/test_config.py)."""
    a, _ = upstreams
    data = basic_config(a.url)
    data["rate_limit"] = {"storage_uri": "redis://:limit-pw@127.0.0.1:1/0"}
    data["edge"] = {
        "redis_url": "redis://user:edge-pw@127.0.0.1:1/0",
        "auth": {"jwt": {"api_key_hashes": {"ci": "5e" * 32}}},
    }
    gw = run_gateway(data)
    async with aiohttp.ClientSession() as session:
        bodies = []
        for path in ("/admin/config", "/admin/clusters", "/admin/routes", "/dashboard/data"):
            async with session.get(gw.admin_url + path, headers=AUTH) as r:
                assert r.status == 200
                bodies.append(await r.text())
    for secret in ("limit-pw", "edge-pw", "5e" * 32):
        assert not any(secret in body for body in bodies), secret
    config = orjson.loads(bodies[0])
    assert config["rate_limit"]["storage_uri"] == "redis://:**********@127.0.0.1:1/0"
    assert config["edge"]["redis_url"] == "redis://user:**********@127.0.0.1:1/0"


async def test_admin_endpoints_answer_a_wrong_method_with_405(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A known endpoint called with the wrong method is a 405 naming the right one in
    ``Allow`` (it was a 404, as if the endpoint did not exist); unknown paths stay 404."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    cases = [
        ("GET", "/admin/reload", "POST"),
        ("PUT", "/admin/reload", "POST"),
        ("POST", "/admin/config", "GET"),
        ("DELETE", "/admin/clusters", "GET"),
        ("GET", "/admin/clusters/svc/instances/x/drain", "POST"),
        ("POST", "/health", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/dashboard/data", "GET"),
        ("DELETE", "/dashboard/events", "GET"),
        ("GET", "/admin/cache/purge", "POST"),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path, allowed in cases:
            async with session.request(method, gw.admin_url + path, headers=AUTH) as r:
                assert (r.status, r.headers.get("Allow")) == (405, allowed), (method, path)
        async with session.get(gw.admin_url + "/admin/nothing", headers=AUTH) as r:
            assert r.status == 404
        async with session.post(gw.admin_url + "/admin/reload") as r:
            assert r.status == 401  # no token: nothing about the endpoint is told


def _configmap_version(directory: Path, version: str, data: dict[str, Any]) -> None:
    """Publish ``data`` the way the kubelet updates a ConfigMap volume: a new
    ``..<version>`` directory, the ``..data`` symlink swapped to it by a rename, the old
    directory removed."""
    new = directory / f"..{version}"
    new.mkdir()
    (new / "gateway.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    data_link = directory / "..data"
    old = os.readlink(data_link) if data_link.is_symlink() else None
    tmp = directory / "..data_tmp"
    tmp.symlink_to(new.name)
    tmp.rename(data_link)
    if old is not None:
        shutil.rmtree(directory / old)


async def _upstream_seen(gw: LiveGateway, name: str, bound: float = 60.0) -> bool:
    async def seen() -> bool:
        async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo/w") as r:
            return r.headers.get("X-Upstream") == name

    loop = asyncio.get_running_loop()
    end = loop.time() + bound  # a hang guard
    while loop.time() < end:
        if await seen():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_configmap_style_symlink_swap_reloads_every_time(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    """``gateway.yaml -> ..data/gateway.yaml`` with ``..data`` swapped at each update: every
    update is applied (the watch followed the first resolved directory, which the first
    update deletes, so the second and later updates were never seen)."""
    a, b = upstreams
    directory = tmp_path / "config"
    directory.mkdir()
    first = {**basic_config(a.url), "watch": True}
    _configmap_version(directory, "v1", first)
    path = directory / "gateway.yaml"
    path.symlink_to("..data/gateway.yaml")
    gw = LiveGateway(GatewayConfig.model_validate(first), path).start()
    try:
        # The watcher starts in the background and an update made before it did goes
        # unseen: the first one is published again until it is applied. The later ones
        # (the case under test) are published once each.
        for attempt in range(60):  # a hang guard
            _configmap_version(directory, f"v2.{attempt}", {**basic_config(b.url), "watch": True})
            if await _upstream_seen(gw, "b", bound=1.0):
                break
        else:
            pytest.fail("the first update was never applied")
        _configmap_version(directory, "v3", first)
        assert await _upstream_seen(gw, "a")
        _configmap_version(directory, "v4", {**basic_config(b.url), "watch": True})
        assert await _upstream_seen(gw, "b")
    finally:
        await asyncio.to_thread(gw.stop)


class _SlowHandshake:
    """A WebSocket upstream that finishes each handshake only when the test says so,
    and records how each session ended."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.ended = threading.Event()
        self.close_code: int | None = None
        self.release: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self.requested.set()
        assert self.release is not None
        await self.release.wait()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        self.close_code = ws.close_code
        self.ended.set()
        return ws

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.release, self._stop = asyncio.Event(), asyncio.Event()
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self._sock).start()
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> _SlowHandshake:
        self._thread.start()
        assert self._started.wait(30)
        return self

    def finish_handshakes(self) -> None:
        assert self.loop is not None and self.release is not None
        self.loop.call_soon_threadsafe(self.release.set)

    def __exit__(self, *exc: object) -> None:
        self.finish_handshakes()
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


async def test_a_client_gone_during_the_upstream_handshake_closes_the_upstream(
    run_gateway: Run,
) -> None:
    """A client that leaves while the upstream handshake is under way: once the upstream
    accepts, its WebSocket is closed with 1001 (going away), as for a client that leaves
    later (the accept to the gone client raised past the session, and the upstream's
    connection was dropped without a close frame: 1006 there)."""
    with _SlowHandshake() as upstream:
        gw = run_gateway(basic_config(upstream.url))
        with _asgi_errors() as asgi_errors:
            _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await writer.drain()
            assert await asyncio.to_thread(upstream.requested.wait, 60)
            writer.close()
            await writer.wait_closed()
            # Give the gateway a moment to read the client's end before the upstream
            # accepts (the case under test); in the other order the session starts and
            # its pump sees the client gone: 1001 upstream either way.
            await asyncio.sleep(0.2)
            upstream.finish_handshakes()
            assert await asyncio.to_thread(upstream.ended.wait, 60)
            assert await eventually(lambda: not gw.gateway.websockets)
        assert [r.getMessage() for r in asgi_errors if r.exc_info] == []
    assert upstream.close_code == 1001


def _mute_websocket_upstream(listener: socket.socket, accepted: list[socket.socket]) -> None:
    """Accept one connection, complete its WebSocket handshake, then never read or write
    again (a peer behind a dead link: no close frame, no FIN, no pong)."""
    conn, _ = listener.accept()
    accepted.append(conn)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return
        head += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # RFC 6455 §4.2.2
    )
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def test_a_mute_upstream_websocket_is_closed_after_the_idle_timeout(
    run_gateway: Run,
) -> None:
    """An upstream that stops answering (no close, no FIN, no pong) does not hold the
    client for ever: the gateway pings it once the route's ``idle`` timeout passes
    without a message, and closes the client with 1011 when no pong comes (the session
    stayed open as long as the client did)."""
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        mute = threading.Thread(target=_mute_websocket_upstream, args=(listener, accepted))
        mute.start()
        data = basic_config(url, timeouts={"idle": 0.5})
        data["clusters"][0]["health"] = {"active": False}  # the one connection is the session
        gw = run_gateway(data)
        try:
            async with (
                asyncio.timeout(60),  # a hang guard, not a speed check
                aiohttp.ClientSession() as session,
                session.ws_connect(gw.url + "/ws", autoping=True) as ws,
            ):
                msg = await ws.receive()
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1011)
            assert await eventually(lambda: not gw.gateway.websockets)
        finally:
            mute.join(30)
            for conn in accepted:
                conn.close()


async def test_a_quiet_live_upstream_websocket_is_kept_past_the_idle_timeout(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The idle ping only ends sessions whose upstream is gone: one that answers pings
    stays open however long nobody speaks."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url, timeouts={"idle": 0.2}))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws") as ws,
    ):
        await asyncio.sleep(1.5)  # several idle periods, each with its ping and pong
        await ws.send_str("still here")
        msg = await ws.receive(timeout=30)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "still here")
