"""A second adversarial review of routing and forwarding, against the real listener.

Raw sockets (HTTP clients tidy up what these tests send) on both parsers the listener
offers; the recording upstream says what got through.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from flext_api.gateway import hash_password
from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]


def _config(url: str, parser: str) -> dict[str, Any]:
    """``admin.example`` needs credentials; any other host reaches the same upstream."""
    return {
        "listeners": [{"parser": parser}],
        "clusters": [{"name": "svc", "instances": [{"url": url}]}],
        "routes": [
            {
                "name": "admin",
                "match": {"host": "admin.example", "path_prefix": "/"},
                "cluster": "svc",
                "auth": {"methods": ["basic"]},
                "websocket": True,
            },
            {"name": "other", "match": {"path_prefix": "/"}, "cluster": "svc", "websocket": True},
        ],
        "edge": {"auth": {"basic": {"admin": hash_password("pw", iterations=1000)}}},
        "watch": False,
    }


def _head(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; the response's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received.partition(b"\r\n\r\n")[0]


def _upstream_header(upstream: Upstream, path: str, name: str) -> list[str]:
    """The values of ``name`` on the requests ``upstream`` received for ``path``."""
    return [v for r in upstream.requests if r["path"] == path for k, v in r["headers"] if k == name]


@pytest.mark.parametrize("parser", PARSERS)
def test_a_host_list_without_spaces_is_refused(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """``Host: admin.example,x`` matched no host route and went to the catch-all with
    that Host and X-Forwarded-Host, which an upstream taking a list's first element
    reads as admin.example: now 400 ``bad_host``, nothing forwarded."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    head = _head(
        gw.port, b"GET /echo/x HTTP/1.1\r\nHost: admin.example,x\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"x-gateway-reason: bad_host" in head.lower()
    assert [r["path"] for r in a.requests if r["path"].startswith("/echo")] == []


@pytest.mark.parametrize("parser", PARSERS)
def test_a_websocket_host_cannot_add_forwarded_parameters(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A handshake's Host with a quote never reaches the upstream's ``Forwarded``: it is
    no host, so the handshake is refused as a request with it is (the quoting of the
    ``host`` parameter itself is unit-tested)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    head = _head(
        gw.port,
        b'GET /ws HTTP/1.1\r\nHost: x";for=6.6.6.6;by="\r\nUpgrade: websocket\r\n'
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"x-gateway-reason: bad_host" in head.lower()
    assert _upstream_header(a, "/ws", "forwarded") == []


@pytest.mark.parametrize("parser", PARSERS)
def test_a_trusted_proxys_forwarding_lines_are_all_kept_in_order(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """X-Forwarded-For and Forwarded split over lines by a trusted proxy reach the
    upstream whole, the gateway's element last (first from the right)."""
    a, _ = upstreams
    config = _config(a.url, parser)
    config["trusted_proxies"] = ["127.0.0.1/32"]
    gw = run_gateway(config)
    head = _head(
        gw.port,
        b"GET /echo/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n"
        b"X-Forwarded-For: 1.1.1.1\r\nForwarded: for=6.6.6.6\r\nForwarded: for=1.1.1.1\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200"), head
    assert _upstream_header(a, "/echo/x", "x-forwarded-for") == ["6.6.6.6, 1.1.1.1, 127.0.0.1"]
    assert _upstream_header(a, "/echo/x", "forwarded") == [
        'for=6.6.6.6, for=1.1.1.1, for=127.0.0.1;proto=http;host="x"'
    ]


def _prefixes(url: str, parser: str) -> dict[str, Any]:
    """``/echo/admin`` needs credentials, ``/pub`` is stripped, anything else is open."""
    config = _config(url, parser)
    config["routes"] = [
        {
            "name": "admin",
            "match": {"path_prefix": "/echo/admin"},
            "cluster": "svc",
            "auth": {"methods": ["basic"]},
        },
        {
            "name": "pub",
            "match": {"path_prefix": "/pub/v1"},
            "cluster": "svc",
            "strip_prefix": True,
        },
        {"name": "other", "match": {"path_prefix": "/"}, "cluster": "svc"},
    ]
    return config


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "target", ["/echo/admin;x/secret", "/echo/admin;/secret", "/echo/admin%3Bx/y"]
)
def test_path_parameters_cannot_take_a_protected_path_past_its_route(
    parser: str, target: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """``/echo/admin;x/secret`` went to the open catch-all, and an upstream that drops
    path parameters (Tomcat, Jetty, Spring) served ``/echo/admin/secret``: now the
    protected route answers (401) and nothing is forwarded."""
    a, _ = upstreams
    gw = run_gateway(_prefixes(a.url, parser))
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head = _head(gw.port, request.encode())
    assert head.startswith(b"HTTP/1.1 401"), head
    assert [r["path"] for r in a.requests if r["path"].startswith("/echo")] == []


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("target", "sent"),
    [
        ("/pub;v=1/v1/echo/x", "/echo/x"),
        ("/pub/v1;jsessionid=1/echo/x", "/echo/x"),
        ("/pub/v1;x%2Fecho/x", "/echo/x"),
        ("/pub/v1/echo/x;y", "/echo/x;y"),
    ],
)
def test_a_stripped_prefix_takes_its_segments_parameters_along(
    parser: str, target: str, sent: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The prefix the router matched without parameters is stripped with them: the
    rest of the path reaches the upstream, never the whole path unstripped."""
    a, _ = upstreams
    gw = run_gateway(_prefixes(a.url, parser))
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head = _head(gw.port, request.encode())
    assert head.startswith(b"HTTP/1.1 200"), head
    assert [r["raw_path"] for r in a.requests if r["path"].startswith("/echo")] == [sent]
