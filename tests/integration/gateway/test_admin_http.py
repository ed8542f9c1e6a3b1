"""The admin API over HTTP on its own port, file-watch reload, and gateway-made answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.gateway.conftest import LiveGateway, basic_config, refused_handshake
from tests.integration.gateway.upstream import Upstream
from tests.servers.dns_server import DnsServer
from tests.servers.redis_server import RedisServer

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
    assert gw.reloader is not None
    edited = yaml.safe_dump(basic_config(b.url))
    seen = ""
    for attempt in range(1200):  # a hang guard
        if attempt % 20 == 0:
            # The watcher starts in the background and an edit saved before it did goes
            # unseen: save again until the change is applied.
            gw.reloader.path.write_text(edited, encoding="utf-8")
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
    status, _ = await refused_handshake(gw.url + "/ws")
    assert status == 404


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


async def test_route_rate_limit(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """A route's rate limit answers 429 rate_limited with Retry-After once spent."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url, rate_limit="3/minute"))
    statuses = []
    async with aiohttp.ClientSession() as s:
        for _ in range(4):
            async with s.get(gw.url + "/echo/limited") as r:
                statuses.append((r.status, r.headers.get("RateLimit-Remaining")))
                last = r.headers.copy()
    assert statuses == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]
    assert last["X-Gateway-Reason"] == "rate_limited"
    assert int(last["Retry-After"]) >= 1
    assert a.hits("/echo/limited") == 3


SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret!"


def _auth_config(url: str) -> dict[str, Any]:
    config = basic_config(url, auth=True, scopes=["orders:read"])
    config["auth"] = {"jwt_secret": SECRET, "api_keys": {"ci": "key-123"}}
    return config


async def test_auth_route_refuses_without_credentials(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An auth route answers 401 unauthorized with a challenge; nothing reaches the upstream."""
    a, _ = upstreams
    gw = run_gateway(_auth_config(a.url))
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo/private") as r:
        assert (r.status, r.headers["X-Gateway-Reason"]) == (401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert a.hits("/echo/private") == 0


async def test_auth_route_passes_valid_jwt_with_subject(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A valid JWT with the scope passes; the upstream sees the subject, not a forged one."""
    import time

    import jwt

    a, _ = upstreams
    gw = run_gateway(_auth_config(a.url))
    token = jwt.encode(
        {"sub": "alice", "scope": "orders:read", "exp": int(time.time()) + 600}, SECRET, "HS256"
    )
    headers = {"Authorization": f"Bearer {token}", "X-Authenticated-Subject": "mallory"}
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo/p", headers=headers) as r:
        assert r.status == 200
    seen = [v for k, v in a.requests[-1]["headers"] if k == "x-authenticated-subject"]
    assert seen == ["alice"]


async def test_auth_route_forbids_missing_scope(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An API key without the route's scope gets 403 forbidden."""
    a, _ = upstreams
    gw = run_gateway(_auth_config(a.url))
    async with (
        aiohttp.ClientSession() as s,
        s.get(gw.url + "/echo/p", headers={"X-API-Key": "key-123"}) as r,
    ):
        assert (r.status, r.headers["X-Gateway-Reason"]) == (403, "forbidden")


async def test_cluster_from_redis_registry(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, redis_server: RedisServer
) -> None:
    """A cluster with a Redis registry source routes to the instances registered there."""
    from flext_api.discovery import RedisBackend, ServiceInstance, ServiceRegistry

    a, b = upstreams
    async with ServiceRegistry(RedisBackend(redis_server.url)) as services:
        for name, up in (("a", a), ("b", b)):
            instance = ServiceInstance(id=f"orders-{name}", name="orders", url=up.url)
            (await services.register("orders", instance)).unwrap()
        config = basic_config(a.url)
        config["clusters"][0] = {
            "name": "svc",
            "registry": {"backend": "redis", "url": redis_server.url, "service": "orders"},
            "health": {"active": False},
        }
        gw = run_gateway(config)
        seen = set()
        async with aiohttp.ClientSession() as s:
            for _ in range(6):
                async with s.get(gw.url + "/echo/r") as r:
                    seen.add(r.headers["X-Upstream"])
        assert seen == {"a", "b"}
        status, clusters = await _get(gw.admin_url + "/admin/clusters", headers=AUTH)
        assert status == 200
        assert {row["id"] for row in clusters[0]["instances"]} == {"orders-a", "orders-b"}
        assert clusters[0]["registry"] == "redis"


async def test_cluster_from_dns_srv_records(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A cluster with a DNS source routes to the SRV records' hosts and ports, and
    follows a change of the records once their TTL has run out."""
    a, b = upstreams
    zone = {
        ("_orders._tcp.svc.test", "SRV"): [
            (1, f"10 50 {a.port} a.svc.test."),
            (1, f"10 50 {b.port} b.svc.test."),
        ],
        ("a.svc.test", "A"): [(1, "127.0.0.1")],
        ("b.svc.test", "A"): [(1, "127.0.0.1")],
    }
    with DnsServer(zone) as dns_server:
        config = basic_config(a.url)
        config["clusters"][0] = {
            "name": "svc",
            "registry": {
                "backend": "dns",
                "url": f"dns://127.0.0.1:{dns_server.port}",
                "service": "orders",
                "domain": "svc.test",
                "min_ttl": 0.2,
                "timeout": 2,
            },
            "health": {"active": False},
        }
        gw = run_gateway(config)
        async with aiohttp.ClientSession() as s:
            seen = set()
            for _ in range(6):
                async with s.get(gw.url + "/echo/d") as r:
                    assert r.status == 200
                    seen.add(r.headers["X-Upstream"])
            assert seen == {"a", "b"}
            status, clusters = await _get(gw.admin_url + "/admin/clusters", headers=AUTH)
            assert status == 200
            assert clusters[0]["registry"] == "dns"
            ids = {row["id"] for row in clusters[0]["instances"]}
            assert ids == {f"127.0.0.1-{a.port}", f"127.0.0.1-{b.port}"}
            # b's record goes: within a few TTLs only a takes calls.
            zone[("_orders._tcp.svc.test", "SRV")] = [(1, f"10 50 {a.port} a.svc.test.")]
            only_a = False
            for _ in range(200):
                await asyncio.sleep(0.05)
                _, clusters = await _get(gw.admin_url + "/admin/clusters", headers=AUTH)
                if {row["id"] for row in clusters[0]["instances"]} == {f"127.0.0.1-{a.port}"}:
                    only_a = True
                    break
            assert only_a, clusters
            for _ in range(4):
                async with s.get(gw.url + "/echo/d") as r:
                    assert (r.status, r.headers["X-Upstream"]) == (200, "a")
