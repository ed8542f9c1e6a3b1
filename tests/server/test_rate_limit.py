"""Rate limiting: default limit, named buckets, headers, client resolution, failures."""

from __future__ import annotations

import io

import pytest
from fastapi import Depends, FastAPI, Request

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import (
    ClientResolver,
    RateLimitDecision,
    RateLimitService,
    _client_ip,
    rate_limit,
)
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve


def _limits(**kwargs: object) -> ServerConfig:
    # The default strategy (moving window) counts exactly, so the sequence of statuses
    # below never depends on where the wall clock is in a minute.
    return ServerConfig(rate_limit=ServerRateLimitConfig(**kwargs))  # type: ignore[arg-type]


def _scope(peer: str, forwarded: list[bytes] | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value) for value in forwarded or []]
    return {"client": (peer, 1234), "headers": headers}


async def _statuses(app: FastAPI, path: str, peers: list[str]) -> list[int]:
    """The status of one GET ``path`` from each of ``peers`` (the ASGI scope's client),
    the app's lifespan running once around them."""
    statuses = []
    async with serve(app):
        for peer in peers:
            async with serve(app, lifespan=False, client=(peer, 4321)) as client:
                statuses.append((await client.get(path)).status_code)
    return statuses


async def test_default_limit_refuses_with_headers(build: Build) -> None:
    """Past the default limit: 429 problem, Retry-After and RateLimit-* headers."""
    app = build(_limits(default_limit="2/minute"))
    async with serve(app) as client:
        first = await client.get("/missing")
        await client.get("/missing")
        refused = await client.get("/missing")
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert first.headers["ratelimit-policy"] == "2;w=60"
    assert problem(refused)["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"


async def test_probes_are_exempt_from_default_limit(build: Build) -> None:
    """Health, readiness and metrics are never limited by the default limit."""
    app = build(_limits(default_limit="1/minute"))
    async with serve(app) as client:
        statuses = [
            (await client.get(path)).status_code for path in ["/health"] * 3 + ["/ready"] * 3
        ]
    assert statuses == [200] * 6


async def test_named_bucket_is_stricter_and_separate(build: Build) -> None:
    """A named bucket limits its route without touching other routes."""
    app = build(_limits())

    @app.post("/login", dependencies=[Depends(rate_limit("login", "3/minute"))])
    async def login() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        statuses = [(await client.post("/login")).status_code for _ in range(4)]
        other = await client.get("/health")
    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200


async def test_named_bucket_headers_win_over_default(build: Build) -> None:
    """On a route with a named bucket, the response shows that bucket's headers."""
    app = build(_limits(default_limit="100/minute"))

    @app.post("/login", dependencies=[Depends(rate_limit("login", "5/hour"))])
    async def login() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        response = await client.post("/login")
    assert response.headers.get_list("ratelimit-limit") == ["5"]
    assert response.headers["ratelimit-policy"] == "5;w=3600"


async def test_custom_key_function(build: Build) -> None:
    """key= limits per custom key (here a header standing in for a user)."""
    app = build(_limits())

    def per_user(request: Request) -> str:
        return request.headers.get("x-user", "anon")

    @app.get("/q", dependencies=[Depends(rate_limit("q", "1/minute", key=per_user))])
    async def q() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        alice = [(await client.get("/q", headers={"X-User": "alice"})).status_code for _ in "ab"]
        bob = (await client.get("/q", headers={"X-User": "bob"})).status_code
    assert (alice, bob) == ([200, 429], 200)


async def test_disabled_rate_limiting_makes_dependency_a_no_op(build: Build) -> None:
    """enabled=False: the dependency lets everything through, no headers."""
    app = build(_limits(enabled=False))

    @app.get("/q", dependencies=[Depends(rate_limit("q", "1/minute"))])
    async def q() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        responses = [await client.get("/q") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "ratelimit-limit" not in responses[0].headers


async def test_headers_can_be_turned_off(build: Build) -> None:
    """headers=False keeps Retry-After on 429 but sends no RateLimit-* headers."""
    app = build(_limits(default_limit="1/minute", headers=False))
    async with serve(app) as client:
        ok = await client.get("/missing")
        refused = await client.get("/missing")
    assert "ratelimit-limit" not in ok.headers
    assert "ratelimit-limit" not in refused.headers and "retry-after" in refused.headers


async def test_storage_failure_fails_open_and_logs(build: Build, log_stream: io.StringIO) -> None:
    """With Redis unreachable, requests pass (fail_open) and the failure is logged."""
    app = build(_limits(default_limit="1/minute", storage_uri="redis://127.0.0.1:9/0"))
    async with serve(app) as client:
        statuses = [(await client.get("/missing")).status_code for _ in range(2)]
    assert statuses == [404, 404]
    assert records(log_stream, "rate limit storage failed")


async def test_storage_failure_fails_closed_when_configured(build: Build) -> None:
    """fail_open=False answers 503 while the storage is down."""
    app = build(_limits(storage_uri="redis://127.0.0.1:9/0", fail_open=False))

    @app.get("/q", dependencies=[Depends(rate_limit("q", "1/minute"))])
    async def q() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        response = await client.get("/q")
    assert problem(response)["status"] == 503


def test_bad_limit_strings() -> None:
    """A malformed limit is a ValueError at decoration time, a ConfigError in config."""
    with pytest.raises(ValueError, match="invalid rate limit"):
        rate_limit("x", "often")
    from flext_api.server import create_fastapi_app

    with pytest.raises(ConfigError, match="default_limit"):
        create_fastapi_app(_limits(default_limit="lots"))


def test_config_validation() -> None:
    """Bad proxy networks and storage schemes are rejected."""
    with pytest.raises(ValueError, match="not an IP address or network"):
        ServerRateLimitConfig(trusted_proxies=("not-an-ip",))
    with pytest.raises(ValueError, match="storage_uri"):
        ServerRateLimitConfig(storage_uri="memcached://x")


@pytest.mark.parametrize("prefix", [0, 31, 129])
def test_ipv6_prefix_outside_32_to_128_is_refused(prefix: int) -> None:
    """An ``ipv6_prefix`` that would key a whole provider (or nothing) is refused, saying
    what the range is."""
    with pytest.raises(ValueError, match="ipv6_prefix must be between 32 and 128"):
        ServerRateLimitConfig(ipv6_prefix=prefix)


def test_decision_values() -> None:
    """Retry-After is at least one second; headers follow draft-06 naming."""
    decision = RateLimitDecision(False, 10, 0, 0.2, 60)
    assert decision.retry_after == 1
    assert decision.header_dict() == {
        "ratelimit-limit": "10",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "1",
        "ratelimit-policy": "10;w=60",
    }


class TestClientResolver:
    """Which address a request is keyed on."""

    def test_untrusted_peer_ignores_forwarded_for(self) -> None:
        """Without trusted proxies the socket peer is the key, whatever XFF says."""
        resolver = ClientResolver()
        assert resolver.client_ip(_scope("198.51.100.1", [b"1.2.3.4"])) == "198.51.100.1"

    def test_trusted_proxy_uses_rightmost_untrusted_hop(self) -> None:
        """Behind trusted proxies, the right-most untrusted entry is the client."""
        resolver = ClientResolver(["10.0.0.0/8", "127.0.0.1"])
        scope = _scope("10.0.0.2", [b"6.6.6.6, 203.0.113.9", b"10.0.0.5"])
        assert resolver.client_ip(scope) == "203.0.113.9"

    def test_all_hops_trusted_takes_leftmost(self) -> None:
        """If every hop is a trusted proxy, the left-most is the best guess."""
        resolver = ClientResolver(["10.0.0.0/8"])
        assert resolver.client_ip(_scope("10.0.0.2", [b"10.1.1.1, 10.2.2.2"])) == "10.1.1.1"

    def test_trusted_proxy_without_header(self) -> None:
        """A trusted peer that sent no XFF is itself the client."""
        assert ClientResolver(["10.0.0.0/8"]).client_ip(_scope("10.0.0.2")) == "10.0.0.2"

    def test_garbage_hop_is_untrusted_and_truncated(self) -> None:
        """A non-IP entry is treated as an untrusted client, cut to 64 characters."""
        resolver = ClientResolver(["10.0.0.0/8"])
        assert resolver.client_ip(_scope("10.0.0.2", [b"x" * 100])) == "x" * 64

    @pytest.mark.parametrize(
        ("hops", "client"),
        [
            (b"203.0.113.9:5555", "203.0.113.9"),
            (b"[2001:db8::7]:443, 10.0.0.5:80", "2001:db8::7"),
            (b"2001:db8::7", "2001:db8::7"),
            (b"[2001:db8::7]", "2001:db8::7"),
        ],
    )
    def test_forwarded_hops_with_a_port_key_on_the_address(self, hops: bytes, client: str) -> None:
        """Some proxies write ``address:port`` hops: the port is dropped, so one client's
        connections share one key and a trusted proxy written so is still trusted."""
        resolver = ClientResolver(["10.0.0.0/8"])
        assert resolver.client_ip(_scope("10.0.0.2", [hops])) == client

    def test_ipv4_mapped_peer_is_trusted_by_its_ipv4_network(self) -> None:
        """A proxy seen through a dual-stack socket (``::ffff:10.0.0.2``) is still trusted:
        else every client behind it would share the proxy's bucket."""
        resolver = ClientResolver(["10.0.0.0/8"])
        assert resolver.is_trusted("::ffff:10.0.0.2") is True
        assert resolver.client_ip(_scope("::ffff:10.0.0.2", [b"203.0.113.9"])) == "203.0.113.9"
        hops = [b"203.0.113.9, ::ffff:10.0.0.5"]  # a trusted hop written the same way
        assert resolver.client_ip(_scope("10.0.0.2", hops)) == "203.0.113.9"
        assert resolver.is_trusted("::ffff:192.0.2.1") is False

    def test_missing_client(self) -> None:
        """A scope without a client (some test transports) keys on 'unknown'."""
        assert ClientResolver().client_ip({"headers": []}) == "unknown"

    def test_trust_cache_is_bounded(self) -> None:
        """The memo of trusted addresses stops growing at its cap."""
        resolver = ClientResolver(["10.0.0.0/8"])
        for n in range(5000):
            resolver.is_trusted(f"192.0.{n // 256}.{n % 256}")
        assert len(resolver._trusted) == 4096
        assert resolver.is_trusted("10.9.9.9") is True


class TestRateLimitKey:
    """What a limit counts per: an IPv4 address, or an IPv6 address's network."""

    @pytest.mark.parametrize(
        ("address", "key"),
        [
            ("2001:db8:1:2::a", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:DB8:1:2:0:0:0:1", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::a", "2001:db8:1:3::/64"),
        ],
    )
    def test_ipv6_is_grouped_by_its_slash64(self, address: str, key: str) -> None:
        """Every address of one /64 (what one host can rotate through) is one key."""
        assert _client_ip.rate_limit_key(address) == key

    def test_ipv4_is_keyed_per_address(self) -> None:
        """An IPv4 address is its own key, as it is."""
        assert _client_ip.rate_limit_key("203.0.113.9") == "203.0.113.9"

    def test_ipv4_mapped_is_keyed_as_its_ipv4_address(self) -> None:
        """``::ffff:a.b.c.d`` (a dual-stack socket's IPv4 peer) is its IPv4 address, at any
        prefix: grouped as IPv6, every IPv4 client would share ``::/64``."""
        assert _client_ip.rate_limit_key("::ffff:203.0.113.9") == "203.0.113.9"
        assert _client_ip.rate_limit_key("::FFFF:203.0.113.9", 128) == "203.0.113.9"

    @pytest.mark.parametrize(
        ("prefix", "key"),
        [(32, "2001:db8::/32"), (48, "2001:db8:1::/48"), (60, "2001:db8:1::/60"),
         (128, "2001:db8:1:2::a")],
    )  # fmt: skip
    def test_prefix_is_configurable(self, prefix: int, key: str) -> None:
        """``ipv6_prefix`` sets the group; 128 keys each address (in canonical form)."""
        assert _client_ip.rate_limit_key("2001:0db8:0001:0002:0000:0000:0000:000A", prefix) == key

    @pytest.mark.parametrize("value", ["unknown", "x" * 64, "not:an:address"])
    def test_what_is_not_an_address_is_kept(self, value: str) -> None:
        """A value that is no address (no client, a garbage hop) stays its own key."""
        assert _client_ip.rate_limit_key(value) == value

    def test_service_groups_the_key_but_not_the_client_address(self) -> None:
        """The limiter counts the /64; the resolved client (for logs, forwarding) stays
        the full address."""
        config = ServerRateLimitConfig(trusted_proxies=("10.0.0.0/8",))
        service = RateLimitService(config, logger=None)
        scope = _scope("10.0.0.2", [b"2001:db8:1:2::a"])
        assert service.client_key(scope) == "2001:db8:1:2::/64"
        assert service.clients.client_ip(scope) == "2001:db8:1:2::a"

    async def test_default_limit_holds_across_one_slash64(self, build: Build) -> None:
        """Peers rotating inside one /64 share the default limit; another /64 does not."""
        app = build(_limits(default_limit="2/minute"))
        peers = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:a:b:c:d", "2001:db8:9::1"]
        assert await _statuses(app, "/missing", peers) == [404, 404, 429, 404]

    async def test_named_bucket_with_prefix_128_keys_each_address(self, build: Build) -> None:
        """``ipv6_prefix=128``: each IPv6 address has its own bucket again."""
        app = build(_limits(ipv6_prefix=128))

        @app.get("/q", dependencies=[Depends(rate_limit("q", "1/minute"))])
        async def q() -> dict[str, str]:
            return {}

        peers = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::1"]
        assert await _statuses(app, "/q", peers) == [200, 200, 429]


async def test_websocket_handshake_while_the_storage_is_down_fails_closed_cleanly() -> None:
    """fail_open=False and Redis down: a WebSocket upgrade gets the 503 problem (it was an
    exception out of the stack: uvicorn's bare 500 and a traceback)."""
    import aiohttp
    from fastapi import WebSocket

    from flext_api.server import create_fastapi_app
    from tests.server.live import LiveServer

    app = create_fastapi_app(
        _limits(default_limit="5/minute", storage_uri="redis://127.0.0.1:9/0", fail_open=False)
    )

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    live = LiveServer(app).start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(live.url.replace("http", "ws", 1) + "/ws")
    finally:
        live.stop()
    assert refused.value.status == 503
