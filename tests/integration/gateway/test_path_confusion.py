"""Path confusion against the real listener: a public route must not lead to a protected one.

The gateway routes on the path it forwards, so an upstream that resolves dot segments
serves what the route allowed. Requests go over raw sockets (HTTP clients resolve dot
segments themselves), on both parsers the listener offers.
"""

from __future__ import annotations

import json
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
    return {
        "listeners": [{"parser": parser}],
        "clusters": [{"name": "svc", "instances": [{"url": url}]}],
        "routes": [
            {
                "name": "admin",
                "match": {"path_prefix": "/echo/admin"},
                "cluster": "svc",
                "auth": {"methods": ["basic"]},
            },
            {"name": "public", "match": {"path_prefix": "/echo/public"}, "cluster": "svc"},
        ],
        "edge": {"auth": {"basic": {"admin": hash_password("pw", iterations=1000)}}},
        "watch": False,
    }


def _send(port: int, head: bytes) -> tuple[int, bytes]:
    """One raw request head on a fresh connection: the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head_in, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head_in.split(b" ")[1]), body


def _echoed(upstream: Upstream, key: str = "path") -> list[str]:
    """``key`` of every request the upstream's echo routes received (none when refused)."""
    return [r[key] for r in upstream.requests if r["path"].startswith("/echo")]


def _get(port: int, target: str) -> tuple[int, dict[str, Any]]:
    """One ``GET target`` on a fresh connection: the status and the JSON body."""
    status, body = _send(
        port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    return status, json.loads(body)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "target",
    ["/echo/public/../admin/x", "/echo/public/%2e%2e/admin/x", "/echo/public/./../admin/x"],
)
def test_dot_segments_resolve_before_routing(
    target: str, parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Through the public prefix to the protected one: the protected route's auth answers."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    status, body = _get(gw.port, target)
    assert status == 401, body
    assert _echoed(a) == []


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "target",
    [
        "/echo/public/..%2fadmin/x",
        "/echo/public/%2E%2E%5Cadmin/x",
        "/echo/public/..\\admin/x",
        "/echo/public/..;/admin/x",
        "/../echo/admin/x",
    ],
)
def test_hidden_dot_segments_are_refused(
    target: str, parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Dot segments behind an escaped slash, a backslash or ``;``, or above the root: 400."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    status, body = _get(gw.port, target)
    assert (status, body["reason"]) == (400, "ambiguous_path")
    assert _echoed(a) == []


@pytest.mark.parametrize("parser", PARSERS)
def test_the_upstream_gets_the_resolved_path(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A path resolved for routing is the path forwarded; other escapes pass as sent."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    assert _get(gw.port, "/echo/public/a/./b/../c%20d")[0] == 200
    assert _get(gw.port, "/echo/public/a%2Fb.json")[0] == 200
    sent = _echoed(a, "raw_path")
    assert sent == ["/echo/public/a/c%20d", "/echo/public/a%2Fb.json"]


@pytest.mark.parametrize(
    ("target", "status"),
    [("/echo/public/../admin/ws", b"401"), ("/echo/public/..%2fadmin/ws", b"400")],
)
def test_websocket_handshakes_are_held_to_the_same_paths(
    target: str, status: bytes, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An upgrade through the public prefix is refused (401 or 400), never switched."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, "httptools" if httptools_available() else "h11"))
    upgrade = (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(upgrade.encode())
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    assert head.split(b" ")[1] == status, head
    assert _echoed(a) == []


def _hosts_config(url: str, parser: str) -> dict[str, Any]:
    """``admin.example`` needs credentials, ``www.example`` does not; one upstream."""
    config = _config(url, parser)
    config["routes"] = [
        {
            "name": "admin",
            "match": {"host": "admin.example", "path_prefix": "/"},
            "cluster": "svc",
            "auth": {"methods": ["basic"]},
        },
        {"name": "www", "match": {"host": "www.example", "path_prefix": "/"}, "cluster": "svc"},
        {"name": "other", "match": {"path_prefix": "/"}, "cluster": "svc"},
    ]
    return config


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "head",
    [
        b"GET /echo/x HTTP/1.1\r\nHost: www.example\r\nHost: admin.example\r\n",
        b"GET /echo/x HTTP/1.1\r\nHost: www.example, admin.example\r\n",
        b"GET /echo/x HTTP/1.1\r\n",
        b"GET http://user@admin.example/echo/x HTTP/1.1\r\nHost: www.example\r\n",
    ],
    ids=["two-hosts", "host-list", "no-host", "userinfo"],
)
def test_hosts_a_route_cannot_be_sure_of_are_refused(
    head: bytes, parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Two Host lines, a list, none on HTTP/1.1, a userinfo: 400, nothing forwarded."""
    a, _ = upstreams
    gw = run_gateway(_hosts_config(a.url, parser))
    status, body = _send(gw.port, head + b"Connection: close\r\n\r\n")
    assert status == 400
    # Refused by the gateway (or by h11 before it), not by the upstream's parser.
    refusals = (b'"reason":"bad_host"', b'"reason":"ambiguous_path"', b"Invalid HTTP request")
    assert any(refusal in body for refusal in refusals), body
    assert _echoed(a) == []


@pytest.mark.parametrize("parser", PARSERS)
def test_an_absolute_target_is_routed_and_forwarded_by_its_authority(
    parser: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """RFC 9112 3.2.2: the target's authority, not Host, decides (and is sent upstream)."""
    a, _ = upstreams
    gw = run_gateway(_hosts_config(a.url, parser))
    close = b"Connection: close\r\n\r\n"
    tail = b" HTTP/1.1\r\nHost: www.example\r\n" + close
    assert _send(gw.port, b"GET http://admin.example/echo/x" + tail)[0] == 401
    # "admin.example." (the root's dot) is admin.example
    assert _send(gw.port, b"GET /echo/x HTTP/1.1\r\nHost: admin.example.\r\n" + close)[0] == 401
    status, body = _send(gw.port, b"GET http://other.example/echo/a/../y?q=1" + tail)
    assert status == 200
    sent = json.loads(body)
    assert (sent["path"], sent["query"]) == ("/echo/y", "q=1")
    assert [v for k, v in sent["headers"] if k.lower() == "host"] == ["other.example"]
