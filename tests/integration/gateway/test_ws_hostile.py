"""WebSockets against hostile peers: a silent upstream, huge messages, a vanished client,
a client without credentials or forging identity and forwarding headers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest

from flext_api.gateway._websocket import MAX_MESSAGE_BYTES
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config, refused_handshake
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]


async def test_an_upstream_that_never_answers_the_handshake_is_a_504(run_gateway: Run) -> None:
    """An upstream that accepts the connection and never answers: 504 within per_try."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        gw = run_gateway(basic_config(url, timeouts={"per_try": 0.5}))
        # A guard, not a speed check: the gateway used to hold the client for 300 s.
        async with asyncio.timeout(120):
            refused = await refused_handshake(gw.url + "/ws", timeout=aiohttp.ClientWSTimeout())
    assert refused == (504, "upstream_timeout")


async def test_a_message_bigger_than_the_bound_closes_the_client_with_1009(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upstream message over the listener's bound is not relayed: the client gets 1009."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", max_msg_size=0) as ws,
    ):
        await ws.send_str(f"big:{MAX_MESSAGE_BYTES + 1}")
        msg = await ws.receive(timeout=30)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 1009
    await eventually(lambda: not gw.gateway.websockets)
    assert not gw.gateway.websockets


async def test_a_vanished_client_closes_the_upstream_with_a_sendable_code(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A client that drops the connection: the upstream gets 1000/1001, never 1005/1006."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url + "/ws")
        await ws.send_str("ping")
        assert (await ws.receive(timeout=30)).data == "ping"
        connection = ws._response.connection
        assert connection is not None and connection.transport is not None
        connection.transport.abort()
        await eventually(lambda: bool(a.ws_closes))
    assert a.ws_closes in ([1000], [1001])
    await eventually(lambda: not gw.gateway.websockets)
    assert not gw.gateway.websockets


SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret!"


def _private(url: str) -> dict[str, Any]:
    """The catch-all route behind the core ``auth: true`` with scope ``chat``."""
    config = basic_config(url, auth=True, scopes=["chat"])
    config["auth"] = {"jwt_secret": SECRET, "api_keys": {"ci": "key-123"}}
    return config


def _bearer(sub: str, scope: str) -> dict[str, str]:
    claims = {"sub": sub, "scope": scope, "exp": int(time.time()) + 600}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, "HS256")}


def _seen(upstream: Upstream, name: str) -> list[str]:
    """The values of ``name`` in the last request ``upstream`` received."""
    return [v for k, v in upstream.requests[-1]["headers"] if k == name]


async def test_a_handshake_on_an_auth_route_needs_credentials_and_scopes(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """auth: true holds for an upgrade: 401 without credentials, 403 without the scope,
    neither dialling the upstream; a valid token connects and its subject is sent."""
    a, _ = upstreams
    gw = run_gateway(_private(a.url))
    forged = {"X-Authenticated-Subject": "admin"}
    anonymous = await refused_handshake(gw.url + "/ws", headers=forged)
    unscoped = await refused_handshake(gw.url + "/ws", headers={"X-API-Key": "key-123"})
    assert (anonymous, unscoped) == ((401, "unauthorized"), (403, "forbidden"))
    assert a.hits("/ws") == 0
    headers = {**_bearer("alice", "chat"), **forged}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", headers=headers) as ws,
    ):
        await ws.send_str("hi")
        assert (await ws.receive(timeout=30)).data == "hi"
    assert _seen(a, "x-authenticated-subject") == ["alice"]


async def test_a_handshake_spends_the_route_rate_limit(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A route's rate_limit counts upgrades: once spent, 429 rate_limited with Retry-After."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url, rate_limit="1/minute"))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gw.url + "/ws"):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(gw.url + "/ws")
    headers = info.value.headers
    assert headers is not None
    assert (info.value.status, headers["X-Gateway-Reason"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1 and headers["RateLimit-Remaining"] == "0"
    assert a.hits("/ws") == 1


async def test_a_handshake_cannot_forge_identity_or_forwarding_headers(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The upstream of an upgrade sees the gateway's identity and forwarding headers, as an
    HTTP request's, never a client's from outside trusted_proxies."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    forged = {
        "X-Authenticated-Subject": "admin",
        "X-Forwarded-For": "6.6.6.6",
        "Forwarded": "for=6.6.6.6",
        "X-Real-IP": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "X-Request-ID": "req-1",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", headers=forged),
    ):
        pass
    host = f"127.0.0.1:{gw.port}"
    assert _seen(a, "x-authenticated-subject") == []
    assert _seen(a, "x-real-ip") == []
    assert _seen(a, "x-forwarded-for") == ["127.0.0.1"]
    assert _seen(a, "x-forwarded-host") == [host]
    assert _seen(a, "x-forwarded-proto") == ["http"]
    assert _seen(a, "forwarded") == [f'for=127.0.0.1;proto=http;host="{host}"']
    assert _seen(a, "x-request-id") == ["req-1"]


async def test_a_signed_subject_a_header_cannot_carry_is_refused(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A valid token whose ``sub`` held CR/LF made every upstream request unsendable,
    blamed on the healthy instance (its breaker opened for every client); sent without
    its control characters it would name another subject (``"a\\x00b"`` as ``"ab"``).
    It is refused (401) before any upstream is asked; the instance keeps serving."""
    a, _ = upstreams
    gw = run_gateway(_private(a.url))
    async with aiohttp.ClientSession() as session:
        for sub in ("a\r\nX-Admin: 1", "a\x00b", "   "):
            for _ in range(4):  # past the breaker's consecutive-failure threshold, were it hit
                async with session.get(gw.url + "/echo/x", headers=_bearer(sub, "chat")) as r:
                    assert r.status == 401
                    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        async with session.get(gw.url + "/echo/x", headers=_bearer("ab", "chat")) as r:
            assert r.status == 200
    assert _seen(a, "x-authenticated-subject") == ["ab"]


async def test_a_signed_subject_outside_latin1_goes_upstream_as_utf8(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """One outside Latin-1 was a bare 500; it goes upstream as UTF-8 bytes."""
    a, _ = upstreams
    gw = run_gateway(_private(a.url))
    async with (
        aiohttp.ClientSession() as session,
        session.get(gw.url + "/echo/x", headers=_bearer("\u65e5\u672c", "chat")) as r,
    ):
        assert r.status == 200
    assert _seen(a, "x-authenticated-subject") == ["\u65e5\u672c"]


async def _closed_at_expiry(url: str, headers: dict[str, str], exp: int) -> int | None:
    """Connect through the gateway, echo once, wait for the gateway's close; its code."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url + "/ws", headers=headers) as ws,
    ):
        await ws.send_str("hi")
        assert (await ws.receive(timeout=30)).data == "hi"
        closing = await ws.receive(timeout=30)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert time.time() >= exp  # not before the token expired (leeway 0, one clock)
        return ws.close_code


async def test_a_session_ends_when_its_token_expires(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A session the core auth: true admitted with a JWT is closed on both sides with
    4403 at the token's exp: the socket does not outlive its credentials."""
    a, _ = upstreams
    config = _private(a.url)
    config["auth"]["jwt_leeway"] = 0
    gw = run_gateway(config)
    exp = int(time.time()) + 2
    token = jwt.encode({"sub": "alice", "scope": "chat", "exp": exp}, SECRET, "HS256")
    code = await _closed_at_expiry(gw.url, {"Authorization": "Bearer " + token}, exp)
    assert code == 4403
    await eventually(lambda: bool(a.ws_closes))
    assert a.ws_closes == [4403]
    await eventually(lambda: not gw.gateway.websockets)


async def test_a_session_admitted_by_an_edge_jwt_rule_ends_at_its_exp(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The same for the edge's jwt rule; an API key admits a session that stays open."""
    a, _ = upstreams
    config = basic_config(a.url, auth={"methods": ["jwt", "api_key"]})
    digest = hashlib.sha256(b"key-123").hexdigest()
    jwt_rule = {"jwt_secret": SECRET, "jwt_leeway": 0, "api_key_hashes": {"ci": digest}}
    config["edge"] = {"auth": {"jwt": jwt_rule}}
    gw = run_gateway(config)
    exp = int(time.time()) + 2
    token = jwt.encode({"sub": "alice", "exp": exp}, SECRET, "HS256")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(gw.url + "/ws", headers={"X-API-Key": "key-123"}) as keyed,
    ):
        assert await _closed_at_expiry(gw.url, {"Authorization": "Bearer " + token}, exp) == 4403
        await keyed.send_str("still here")
        assert (await keyed.receive(timeout=30)).data == "still here"
    await eventually(lambda: 4403 in a.ws_closes)
