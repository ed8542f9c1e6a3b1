"""Adversarial cases of the proxy core: prefixes, hop-by-hop headers both ways, odd upstreams."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]


def _exchange(port: int, head: bytes) -> tuple[bytes, bytes]:
    """One raw request on a fresh connection; the response head and everything after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head_in, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    return head_in, rest


def _get(port: int, target: str, extra: str = "") -> tuple[bytes, bytes]:
    return _exchange(
        port, f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode()
    )


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("target", "sent"),
    [
        ("/pub/echo/x", "/echo/x"),
        ("/%70ub/echo/x", "/echo/x"),
        ("/p%75b/echo/a%20b?q=%2F&r=+%zz", "/echo/a%20b?q=%2F&r=+%zz"),
        ("/pub%2Fecho/x", "/echo/x"),
    ],
)
def test_strip_prefix_strips_what_the_route_matched(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str, target: str, sent: str
) -> None:
    """The prefix matched on the decoded path is the one stripped from the forwarded
    path, however the client escaped it: never the whole path forwarded unstripped."""
    a, _ = upstreams
    config = basic_config(a.url)
    config["listeners"] = [{"parser": parser}]
    config["routes"] = [
        {"name": "pub", "match": {"path_prefix": "/pub"}, "cluster": "svc", "strip_prefix": True}
    ]
    gw = run_gateway(config)
    head, _ = _get(gw.port, target)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert [r["raw_path"] for r in a.requests] == [sent]


def test_hop_by_hop_response_headers_are_dropped(fault: FaultServer, run_gateway: Run) -> None:
    """Headers the upstream names in Connection, and the RFC 9110 hop-by-hop ones, stay
    on the upstream's hop; every Set-Cookie is kept on its own line."""

    async def hoppy(request: Request, writer: ResponseWriter) -> None:
        await writer.send_head(
            200,
            [
                ("Connection", "x-secret, keep-alive"),
                ("X-Secret", "s"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("Upgrade", "h2c"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2, c=3; Path=/"),
                ("Content-Length", "2"),
            ],
        )
        await writer.write(b"ok")
        writer.finish()

    route = fault.add_route(r"/hoppy", hoppy)
    try:
        gw = run_gateway(basic_config(fault.url))
        head, body = _get(gw.port, "/hoppy")
    finally:
        fault.remove_route(route)
    lines = head.lower().split(b"\r\n")
    names = [line.split(b":", 1)[0] for line in lines[1:]]
    assert body == b"ok"
    for name in (b"x-secret", b"keep-alive", b"proxy-connection", b"upgrade"):
        assert name not in names, head
    assert [line for line in lines if line.startswith(b"set-cookie")] == [
        b"set-cookie: a=1; path=/",
        b"set-cookie: b=2, c=3; path=/",
    ]


@pytest.mark.parametrize("transport", ["h1", "aiohttp"])
@pytest.mark.parametrize("parser", PARSERS)
def test_content_length_and_chunked_from_the_upstream(
    fault: FaultServer, run_gateway: Run, parser: str, transport: str
) -> None:
    """An upstream answer framed both ways (RFC 9112 section 6.3: a proxy must not pass
    it on as is) never reaches the client with a Content-Length its body contradicts."""

    async def both(request: Request, writer: ResponseWriter) -> None:
        await writer.send_head(200, [("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        await writer.write_chunk(b"hello, smuggled world")
        await writer.end_chunks()

    route = fault.add_route(r"/both", both)
    try:
        config = basic_config(fault.url, retry={"retries": 0})
        config["clusters"][0]["transport"] = transport
        config["listeners"] = [{"parser": parser}]
        gw = run_gateway(config)
        second = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        head, rest = _exchange(gw.port, b"GET /both HTTP/1.1\r\nHost: x\r\n\r\n" + second)
    finally:
        fault.remove_route(route)
    assert head.startswith(b"HTTP/1.1 502"), head
    assert b"hello" not in rest


@pytest.mark.parametrize("parser", PARSERS)
def test_asterisk_form_never_counts_against_an_instance(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """``OPTIONS *`` (which no instance URL can carry) is refused with 400, and however
    many a client sends, the instance's breaker stays closed for everyone else."""
    a, _ = upstreams
    config = basic_config(a.url, retry={"retries": 0})
    config["listeners"] = [{"parser": parser}]
    config["clusters"][0]["breaker"] = {"consecutive_failures": 2}
    gw = run_gateway(config)
    for _ in range(4):
        head, _ = _exchange(gw.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), head
        assert b"x-gateway-reason: ambiguous_path" in head.lower()
    head, _ = _get(gw.port, "/echo/after")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert [r["path"] for r in a.requests if r["path"].startswith("/echo")] == ["/echo/after"]


@pytest.mark.parametrize("transport", ["h1", "aiohttp"])
@pytest.mark.parametrize("parser", PARSERS)
def test_a_rewritten_path_never_becomes_part_of_the_authority(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str, transport: str
) -> None:
    """A rewrite whose result lacks the leading ``/`` (``^/api/(.*)$`` -> ``\\1``) still
    sends a path to the route's instance: ``/api/echo@other-host/echo/x`` must not turn
    the instance URL into ``http://instance:portecho@other-host/echo/x``, a host the
    client chose."""
    a, b = upstreams
    config = basic_config(a.url, rewrite={"regex": "^/api/(.*)$", "replacement": r"\1"})
    config["listeners"] = [{"parser": parser}]
    config["clusters"][0]["transport"] = transport
    gw = run_gateway(config)
    head, _ = _get(gw.port, f"/api/echo@127.0.0.1:{b.port}/echo/x")
    assert b.requests == []
    assert head.startswith(b"HTTP/1.1 200"), head
    _get(gw.port, "/api/echo/y")
    assert [r["raw_path"] for r in a.requests] == [f"/echo@127.0.0.1:{b.port}/echo/x", "/echo/y"]
