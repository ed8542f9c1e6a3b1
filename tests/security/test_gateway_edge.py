"""Attacks on the gateway's edge policies, against the real listener (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flext_api.gateway import hash_password
from tests.integration.gateway.conftest import LiveGateway, run_gateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin

pytestmark = pytest.mark.integration

__all__ = ["origin", "run_gateway"]

Run = Callable[[dict[str, Any]], LiveGateway]
SECRET = "a-test-secret-of-at-least-thirty-two-bytes!"
KEY = "k3y-for-partner-a"


def token(secret: str = SECRET, alg: str = "HS256", **claims: Any) -> str:
    """A token with sub/aud/exp defaults overridden by ``claims``."""
    body = {"sub": "alice", "aud": "orders", "exp": int(time.time()) + 300, "scope": "read"}
    body.update(claims)
    return jwt.encode(body, secret, algorithm=alg)


def jwt_config(origin_url: str, **route: Any) -> dict[str, Any]:
    """A gateway whose route requires JWT (aud ``orders``), an API key or basic auth."""
    from hashlib import sha256

    edge = {
        "auth": {
            "jwt": {
                "jwt_secret": SECRET,
                "jwt_audience": "orders",
                "api_key_hashes": {"partner-a": sha256(KEY.encode()).hexdigest()},
                "api_key_scopes": {"partner-a": ["read"]},
            },
            "basic": {"admin": hash_password("pw", iterations=1000)},
        }
    }
    auth = {"methods": ["jwt", "api_key", "basic"], "scopes": ["read"]}
    return edge_config(origin_url, edge=edge, auth={**auth, **route})


def bearer(value: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": "Bearer " + value}


@pytest.mark.parametrize(
    "credential",
    [
        jwt.encode({"sub": "alice", "aud": "orders"}, "", algorithm="none"),
        token(secret="another-secret-that-is-also-32-bytes-long"),
        token(exp=int(time.time()) - 3600),
        token(aud="billing"),
    ],
    ids=["alg-none", "forged", "expired", "wrong-aud"],
)
async def test_bad_tokens_get_401_with_a_challenge(
    credential: str, origin: EdgeOrigin, run_gateway: Run
) -> None:
    """alg none, a forged signature, an expired token, a wrong aud: 401, invalid_token."""
    gw = run_gateway(jwt_config(origin.url))
    status, headers, _ = await fetch(gw.url + "/echo", headers=bearer(credential))
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert origin.requests == []


async def test_key_confusion_is_refused(origin: EdgeOrigin, run_gateway: Run) -> None:
    """An HS256 token signed with the RS256 public key is refused (algorithm pinned)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config = edge_config(
        origin.url,
        edge={"auth": {"jwt": {"jwt_public_key": pem.decode(), "jwt_audience": "orders"}}},
        auth={"methods": ["jwt"]},
    )
    gw = run_gateway(config)
    forged = jwt.api_jws.PyJWS().encode(
        b'{"sub":"mallory","aud":"orders","exp":9999999999}',
        key=b"x" * 32,
        algorithm="HS256",
    )
    good = token(secret=private, alg="RS256")  # type: ignore[arg-type]
    refused = await fetch(gw.url + "/echo", headers=bearer(forged))
    accepted = await fetch(gw.url + "/echo", headers=bearer(good))
    assert (refused[0], accepted[0]) == (401, 200)


async def test_missing_scope_is_403(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A valid token without the route's scope is 403 insufficient_scope, not 401."""
    gw = run_gateway(jwt_config(origin.url))
    status, headers, _ = await fetch(gw.url + "/echo", headers=bearer(token(scope="write")))
    assert status == 403
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]


async def test_no_credentials_lists_every_scheme(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A request without credentials is 401 with one challenge per accepted scheme."""
    gw = run_gateway(jwt_config(origin.url))
    status, headers, _ = await fetch(gw.url + "/echo")
    schemes = {v.split()[0] for v in headers.getall("WWW-Authenticate")}
    assert (status, schemes) == (401, {"Bearer", "ApiKey", "Basic"})


async def test_identity_headers_are_set_and_never_forged(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The client's X-Auth-* headers are dropped; the verified identity is sent instead."""
    gw = run_gateway(jwt_config(origin.url))
    forged = {"X-Auth-Subject": "root", "X-Auth-Scopes": "admin", **bearer(token())}
    status, _, _ = await fetch(gw.url + "/echo", headers=forged)
    seen = origin.requests[-1]["headers"]
    assert status == 200
    assert (seen["x-auth-subject"], seen["x-auth-scopes"]) == ("alice", "read")


async def test_identity_headers_dropped_on_public_routes(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """On a route without auth the forged identity headers never reach the upstream."""
    gw = run_gateway(edge_config(origin.url))
    await fetch(gw.url + "/echo", headers={"X-Auth-Subject": "root", "X-Auth-Method": "jwt"})
    seen = origin.requests[-1]["headers"]
    assert "x-auth-subject" not in seen and "x-auth-method" not in seen


async def test_api_key_in_the_query_is_ignored(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A valid key in the query string does not authenticate; in X-API-Key it does."""
    gw = run_gateway(jwt_config(origin.url))
    in_query = await fetch(gw.url + f"/echo?api_key={KEY}&x-api-key={KEY}")
    in_header = await fetch(gw.url + "/echo", headers={"X-API-Key": KEY})
    assert (in_query[0], in_header[0]) == (401, 200)
    assert origin.requests[-1]["headers"]["x-auth-subject"] == "partner-a"


async def test_basic_auth(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Basic credentials are checked against the PBKDF2 hash: right 200, wrong 401."""
    gw = run_gateway(jwt_config(origin.url, scopes=[]))

    def basic(password: str) -> dict[str, str]:
        raw = base64.b64encode(f"admin:{password}".encode()).decode()
        return {"Authorization": "Basic " + raw}

    good = await fetch(gw.url + "/echo", headers=basic("pw"))
    bad = await fetch(gw.url + "/echo", headers=basic("nope"))
    assert (good[0], bad[0]) == (200, 401)


async def test_forward_auth(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Forward-auth: the service's 2xx passes its chosen headers on, its 401 is relayed."""
    edge = {
        "auth": {"forward": {"url": origin.url + "/auth", "copy_headers": ["x-user"]}},
    }
    gw = run_gateway(edge_config(origin.url, edge=edge, auth={"methods": ["forward"]}))
    ok = await fetch(gw.url + "/echo", headers={**bearer("good"), "X-User": "mallory"})
    seen = origin.requests[-1]["headers"]
    refused = await fetch(gw.url + "/echo", headers=bearer("bad"))
    assert (ok[0], seen["x-user"], seen["x-auth-subject"]) == (200, "alice", "alice")
    assert (refused[0], refused[1]["WWW-Authenticate"]) == (401, 'Bearer realm="fa"')


async def test_rate_limit_holds_when_xff_rotates(origin: EdgeOrigin, run_gateway: Run) -> None:
    """An untrusted peer rotating X-Forwarded-For still shares one per-IP budget."""
    gw = run_gateway(edge_config(origin.url, rate_limits=[{"limit": "5/minute", "key": "ip"}]))
    statuses = []
    for i in range(10):
        status, headers, _ = await fetch(
            gw.url + "/echo", headers={"X-Forwarded-For": f"10.0.0.{i}"}
        )
        statuses.append(status)
    assert statuses == [200] * 5 + [429] * 5
    assert int(headers["Retry-After"]) >= 1 and headers["RateLimit-Remaining"] == "0"


async def test_ip_limit_holds_across_an_ipv6_slash64(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Behind a trusted proxy, IPv6 addresses of one /64 share one ``key: ip`` budget,
    another /64 has its own, and the upstream still sees each full address."""
    config = edge_config(origin.url, rate_limits=[{"limit": "3/minute", "key": "ip"}])
    gw = run_gateway({**config, "trusted_proxies": ["127.0.0.1"]})

    async def hit(forwarded: str) -> int:
        return (await fetch(gw.url + "/echo", headers={"X-Forwarded-For": forwarded}))[0]

    rotating = [await hit(f"2001:db8:1:2::{n:x}") for n in range(1, 6)]
    forwarded = [r["headers"]["x-forwarded-for"] for r in origin.requests]
    neighbour = await hit("2001:db8:1:3::1")
    assert (rotating, neighbour) == ([200, 200, 200, 429, 429], 200)
    assert forwarded == [f"2001:db8:1:2::{n:x}, 127.0.0.1" for n in range(1, 4)]


async def test_ip_limit_with_ipv6_prefix_128_keys_each_address(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """``ipv6_prefix: 128`` gives each IPv6 address its own bucket."""
    rule = {"limit": "1/minute", "key": "ip", "ipv6_prefix": 128}
    gw = run_gateway(
        {**edge_config(origin.url, rate_limits=[rule]), "trusted_proxies": ["127.0.0.1"]}
    )

    async def hit(forwarded: str) -> int:
        return (await fetch(gw.url + "/echo", headers={"X-Forwarded-For": forwarded}))[0]

    statuses = [await hit(a) for a in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::1")]
    assert statuses == [200, 200, 429]


async def test_core_rate_limit_holds_across_an_ipv6_slash64(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The routing core's ``rate_limit`` groups IPv6 clients by /64 as well."""
    config = edge_config(origin.url, rate_limit="2/minute")
    gw = run_gateway({**config, "trusted_proxies": ["127.0.0.1"]})

    async def hit(forwarded: str) -> int:
        return (await fetch(gw.url + "/echo", headers={"X-Forwarded-For": forwarded}))[0]

    rotating = [await hit(f"2001:db8:1:2::{n:x}") for n in range(1, 4)]
    assert (rotating, await hit("2001:db8:1:3::1")) == ([200, 200, 429], 200)


async def test_concurrency_limit(origin: EdgeOrigin, run_gateway: Run) -> None:
    """With one slot in flight, a second concurrent request is refused with 503."""
    import asyncio

    gw = run_gateway(edge_config(origin.url, concurrency=1))
    slow = asyncio.create_task(fetch(gw.url + "/c/slow?ms=1500&cc=no-store"))
    while origin.hits["slow"] == 0:  # noqa: ASYNC110 - the origin's counter, polled
        await asyncio.sleep(0.01)
    refused = await fetch(gw.url + "/echo")
    assert (refused[0], (await slow)[0]) == (503, 200)


async def test_websocket_handshake_needs_auth(run_gateway: Run) -> None:
    """A WebSocket upgrade on an auth route is refused with 401 without credentials."""
    import aiohttp

    from tests.integration.gateway.upstream import Upstream

    upstream = Upstream("ws").start()
    try:
        gw = run_gateway(jwt_config(upstream.url))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(gw.url + "/ws", headers={"X-Auth-Subject": "root"})
            async with session.ws_connect(gw.url + "/ws", headers=bearer(token())) as ws:
                await ws.send_str("hello")
                echoed = (await ws.receive(timeout=30)).data
    finally:
        upstream.stop()
    assert (info.value.status, echoed) == (401, "hello")
    seen = dict(upstream.requests[-1]["headers"])
    assert seen["x-auth-subject"] == "alice"
