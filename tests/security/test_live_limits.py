"""OWASP API4 (resource consumption) against a real uvicorn on 127.0.0.1.

Real sockets are needed here: the rate-limit key is the TCP peer address, and chunked or
oversized bodies must really travel over the wire.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

import httpx2
import pytest
from fastapi import FastAPI

from flext_api import ServerConfig
from flext_api._server_config import ServerRateLimitConfig
from tests.security.apps import secure_app
from tests.server.live import HOST, LiveServer, response_headers

pytestmark = pytest.mark.integration

Live = Callable[[FastAPI], LiveServer]
MIB = 1024 * 1024


def _limited(limit: str, *proxies: str) -> ServerConfig:
    return ServerConfig(
        rate_limit=ServerRateLimitConfig(default_limit=limit, trusted_proxies=proxies)
    )


def test_rotating_forwarded_headers_from_untrusted_peer_does_not_bypass(live: Live) -> None:
    """From an untrusted peer, new X-Forwarded-For/X-Real-IP/Forwarded values change nothing."""
    server = live(secure_app(io.StringIO(), _limited("3/minute")))
    statuses = []
    with httpx2.Client(base_url=server.url) as client:
        for n in range(6):
            spoof = f"198.51.100.{n}"
            headers = {"X-Forwarded-For": spoof, "X-Real-IP": spoof, "Forwarded": f"for={spoof}"}
            statuses.append(client.get("/hello", headers=headers).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_trusted_proxy_separates_clients(live: Live) -> None:
    """Behind a trusted proxy each forwarded client has its own bucket."""
    server = live(secure_app(io.StringIO(), _limited("2/minute", "127.0.0.1/32")))
    with httpx2.Client(base_url=server.url) as client:

        def hit(forwarded: str) -> int:
            return client.get("/hello", headers={"X-Forwarded-For": forwarded}).status_code

        alice = [hit("203.0.113.10") for _ in range(3)]
        bob = [hit("203.0.113.20") for _ in range(2)]
        # Alice forging a left-most entry is still Alice: the proxy appended her address.
        alice_forging = hit("1.2.3.4, 203.0.113.10")
    assert (alice, bob, alice_forging) == ([200, 200, 429], [200, 200], 429)


def test_ipv6_client_rotating_inside_its_slash64_keeps_one_budget(live: Live) -> None:
    """Behind a trusted proxy, an IPv6 client picking a new address of its /64 for each
    request is still one client; a client of another /64 has its own bucket."""
    server = live(secure_app(io.StringIO(), _limited("2/minute", "127.0.0.1/32")))
    with httpx2.Client(base_url=server.url) as client:

        def hit(forwarded: str) -> int:
            return client.get("/hello", headers={"X-Forwarded-For": forwarded}).status_code

        rotating = [hit(f"2001:db8:1:2:{n:x}::{n:x}") for n in range(1, 5)]
        neighbour = [hit("2001:db8:1:3::1") for _ in range(2)]
    assert (rotating, neighbour) == ([200, 200, 429, 429], [200, 200])


def test_ipv4_mapped_client_shares_its_ipv4_bucket(live: Live) -> None:
    """A client forwarded as ``::ffff:a.b.c.d`` is the IPv4 client ``a.b.c.d``."""
    server = live(secure_app(io.StringIO(), _limited("2/minute", "127.0.0.1/32")))
    with httpx2.Client(base_url=server.url) as client:

        def hit(forwarded: str) -> int:
            return client.get("/hello", headers={"X-Forwarded-For": forwarded}).status_code

        statuses = [hit("203.0.113.10"), hit("::ffff:203.0.113.10"), hit("203.0.113.10")]
        other = hit("::ffff:203.0.113.11")
    assert (statuses, other) == ([200, 200, 429], 200)


def test_login_brute_force_hits_stricter_bucket(live: Live) -> None:
    """The sixth login attempt in a minute is refused before the handler runs."""
    app = secure_app(io.StringIO())
    server = live(app)
    with httpx2.Client(base_url=server.url) as client:
        responses = [client.post("/login") for _ in range(6)]
        other = client.get("/hello")
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    refused = responses[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert app.state.calls.count("login") == 5
    assert other.status_code == 200


def test_limit_is_shared_by_two_workers_through_redis(worker_pair: list[str]) -> None:
    """Two uvicorn processes sharing Redis enforce one 5/minute budget between them."""
    pids = set()
    statuses = []
    with httpx2.Client() as client:
        for n in range(8):
            response = client.get(f"{worker_pair[n % 2]}/pid")
            statuses.append(response.status_code)
            if response.status_code == 200:
                pids.add(response.json()["pid"])
    assert statuses == [200] * 5 + [429] * 3
    assert len(pids) == 2


def test_oversized_body_with_content_length_is_413_before_handler(live: Live) -> None:
    """An 11 MiB body with an honest Content-Length is refused; the handler never runs."""
    app = secure_app(io.StringIO())
    server = live(app)
    with httpx2.Client(base_url=server.url) as client:
        response = client.post("/upload", content=b"x" * (11 * MIB))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert app.state.calls == []


def _send_chunked(port: int, path: str, content_type: bytes, total: int) -> bytes:
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    head = (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: " + content_type + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    received = b""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for _ in range(total // len(chunk)):
                sock.sendall(frame)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before we finish sending
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass
    return received


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/upload", b"application/octet-stream"), ("/orders", b"application/json")],
)
def test_oversized_chunked_body_is_413(live: Live, path: str, content_type: bytes) -> None:
    """An 11 MiB chunked body (no Content-Length) is cut off at the limit with 413.

    A raw-body handler is stopped while reading; a JSON handler never starts.
    """
    app = secure_app(io.StringIO())
    server = live(app)
    status, headers = response_headers(_send_chunked(server.port, path, content_type, 11 * MIB))
    assert status == 413
    assert ("content-type", "application/problem+json") in headers
    assert app.state.calls == []


def test_wrong_content_type_is_415(live: Live) -> None:
    """A JSON endpoint refuses a text/plain body before the handler runs."""
    app = secure_app(io.StringIO())
    server = live(app)
    with httpx2.Client(base_url=server.url) as client:
        response = client.post(
            "/orders",
            content=b'{"item": "a", "quantity": 1}',
            headers={"Content-Type": "text/plain"},
        )
    assert response.status_code == 415
    assert app.state.calls == []


def test_mass_assignment_fields_are_refused(live: Live) -> None:
    """Unknown fields such as is_admin in a body are a 422, never stored (API3)."""
    server = live(secure_app(io.StringIO()))
    with httpx2.Client(base_url=server.url) as client:
        response = client.post("/orders", json={"item": "a", "quantity": 1, "is_admin": True})
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "extra_forbidden"
