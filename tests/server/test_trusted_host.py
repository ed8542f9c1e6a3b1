"""Trusted hosts: 400 for others, health exempt."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from flext_api import ServerConfig
from flext_api.server._protocol import protocol_with_header_timeout
from flext_api.server.middleware._trusted_host import host_allowed
from tests.server.conftest import Build
from tests.server.helpers import problem, serve
from tests.server.live import LiveServer, raw_http, response_headers

Live = Callable[..., LiveServer]

CONFIG = ServerConfig(allowed_hosts=("api.example.com", "*.internal.example", "127.0.0.1"))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("API.example.com:8443", True),
        ("api.example.com.", True),
        ("svc.internal.example", True),
        ("internal.example", False),
        ("evil.com", False),
        ("api.example.com.evil.com", False),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", False),
        ("", False),
        ("api.example.com:", True),
        ("api.example.com:x", False),
        ("api.example.com:80x", False),
        ("127.0.0.1:\u00b2", False),
        ("svc.internal.example:8o", False),
    ],
)
def test_host_matching(host: str, allowed: bool) -> None:
    """Exact names, *.suffix subdomains, ports and trailing dots are handled."""
    exact = frozenset({"api.example.com", "127.0.0.1", "[::1]x"})
    assert host_allowed(host, exact, (".internal.example",)) is allowed


def test_ipv6_host() -> None:
    """A bracketed IPv6 literal is matched without its port."""
    assert host_allowed("[::1]:8000", frozenset({"[::1]"}), ())


@pytest.mark.parametrize("host", ["[::1]evil.com", "[::1]:80x", "[::1"])
def test_ipv6_host_with_junk_is_refused(host: str) -> None:
    """After the bracketed literal comes a port or nothing."""
    assert not host_allowed(host, frozenset({"[::1]", "[::1"}), ())


async def test_unknown_host_is_400(build: Build) -> None:
    """A request for another host gets a 400 problem."""
    async with serve(build(CONFIG)) as client:
        response = await client.get("/missing", headers={"Host": "evil.com"})
    assert problem(response)["status"] == 400


async def test_allowed_host_passes(build: Build) -> None:
    """A listed host reaches the app."""
    async with serve(build(CONFIG)) as client:
        response = await client.get("/missing", headers={"Host": "api.example.com"})
    assert response.status_code == 404


async def test_probes_exempt(build: Build) -> None:
    """Health and readiness answer whatever the Host (pods are probed by IP)."""
    async with serve(build(CONFIG)) as client:
        health = await client.get("/health", headers={"Host": "10.1.2.3:8000"})
        ready = await client.get("/ready", headers={"Host": "10.1.2.3:8000"})
        metrics = await client.get("/metrics", headers={"Host": "10.1.2.3:8000"})
    assert (health.status_code, ready.status_code, metrics.status_code) == (200, 200, 400)


def test_empty_allowed_hosts_rejected() -> None:
    """An empty list is a config error ('*' means any)."""
    with pytest.raises(ValueError, match="at least one host"):
        ServerConfig(allowed_hosts=())


@pytest.mark.parametrize(
    "host",
    [
        "evil.com/.internal.example",
        "evil.com#.internal.example",
        "evil.com?.internal.example",
        "evil.com\\.internal.example",
        "user@evil.com.internal.example",
        "a b.internal.example",
        "evil.com..internal.example",
        "svc.internal.example:8000/x",
    ],
)
def test_host_that_is_not_host_port_is_refused(host: str) -> None:
    """A Host that is not host[:port] never matches a wildcard, whatever it ends with."""
    assert not host_allowed(host, frozenset(), (".internal.example",))


def test_wildcard_refuses_smuggled_host_live(build: Build, live: Live) -> None:
    """Over a real socket, 'evil.com/.example.com' is a 400 problem, not a subdomain."""
    app = build(ServerConfig(allowed_hosts=("*.example.com",)))

    @app.get("/link")
    async def link(request: Request) -> dict[str, str]:
        return {"link": f"https://{request.headers['host']}/reset"}

    server = live(app)
    for host in ("evil.com/.example.com", "evil.com#.example.com", "evil.com?.example.com"):
        raw = raw_http(
            server.port, f"GET /link HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        status, headers = response_headers(raw)
        assert status == 400, host
        assert ("content-type", "application/problem+json") in headers
    ok = raw_http(
        server.port, b"GET /link HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n"
    )
    assert response_headers(ok)[0] == 200


def _host_app(build: Build) -> FastAPI:
    app = build(ServerConfig(allowed_hosts=("api.example.com",)))

    @app.get("/who")
    async def who(request: Request) -> dict[str, object]:
        return {"host": request.headers.getlist("host"), "url": str(request.url)}

    return app


#: uvicorn's h11 protocol, and ``flext-api serve``'s on httptools (which, unlike h11,
#: lets two Host lines through and keeps only an absolute form's path in the scope
#: that serve puts back).
PROTOCOLS = {
    "h11": "h11",
    "serve": protocol_with_header_timeout(30.0, parser="httptools"),
}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize(
    "head",
    [
        b"Host: api.example.com\r\nHost: evil.example\r\n",
        b"Host: evil.example\r\nHost: api.example.com\r\n",
        b"Host: api.example.com\r\nHost: api.example.com\r\n",
    ],
)
def test_two_host_lines_are_refused(build: Build, live: Live, head: bytes, protocol: str) -> None:
    """RFC 9112 §3.2: more than one Host line is a 400, whichever comes first: a proxy
    in front may have read the other one. (h11 refuses them itself, in plain text.)"""
    server = live(_host_app(build), http=PROTOCOLS[protocol])
    raw = raw_http(server.port, b"GET /who HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n")
    status, headers = response_headers(raw)
    assert status == 400
    if protocol == "serve":
        assert ("content-type", "application/problem+json") in headers
        assert b"more than one Host" in raw


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_absolute_form_target_names_the_host(build: Build, live: Live, protocol: str) -> None:
    """RFC 9112 §3.2.2: an absolute-form target's authority is the request's host, not
    Host: 'GET http://evil.example/who' with an allowed Host is refused, and one naming
    an allowed host is served with that host in the app's view of the request."""
    server = live(_host_app(build), http=PROTOCOLS[protocol])
    refused = raw_http(
        server.port,
        b"GET http://evil.example/who HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert response_headers(refused)[0] == 400
    assert b"target names" in refused
    served = raw_http(
        server.port,
        b"GET http://API.example.com/who?q=1 HTTP/1.1\r\nHost: evil.example\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert response_headers(served)[0] == 200
    body = orjson.loads(served.split(b"\r\n\r\n", 1)[1])
    assert body == {"host": ["API.example.com"], "url": "http://API.example.com/who?q=1"}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize(
    "target",
    [b"http://user@api.example.com/who", b"http:///who", b"ftp://api.example.com/who"],
)
def test_unusable_absolute_form_is_refused(
    build: Build, live: Live, target: bytes, protocol: str
) -> None:
    """An absolute form with a userinfo (RFC 9110 §4.2.4), no authority or another
    scheme names no host this service can be sure of: 400."""
    server = live(_host_app(build), http=PROTOCOLS[protocol])
    raw = raw_http(
        server.port,
        b"GET " + target + b" HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n",
    )
    assert response_headers(raw)[0] == 400


async def test_absolute_form_behind_a_root_path_keeps_it() -> None:
    """With a root path (``--root-path /api``), the target's path goes behind it, as
    uvicorn builds ``path`` and ``raw_path`` for an origin-form target."""
    from starlette.types import Message, Receive, Scope, Send

    from flext_api.server.middleware._trusted_host import TrustedHostMiddleware

    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))

    layer = TrustedHostMiddleware(app, allowed_hosts=["api.example.com"])
    scope: Scope = {
        "type": "http",
        "root_path": "/api",
        "path": "/api/who",
        "raw_path": b"http://api.example.com/who%20am",
        "headers": [(b"host", b"evil.example")],
    }

    async def receive() -> Message:
        raise AssertionError("not read")

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing is answered: {message}")

    await layer(scope, receive, send)
    (passed,) = seen
    assert passed["path"] == "/api/who am"
    assert passed["raw_path"] == b"/api/who%20am"
    assert passed["headers"] == [(b"host", b"api.example.com")]
