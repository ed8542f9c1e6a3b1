"""Request smuggling and malformed input against the real listener, over raw sockets.

Behind the gateway sits an upstream that records every request it receives. Each case
must be refused (400, 408, 431) or the connection closed, and nothing smuggled may reach
the upstream: its only allowed requests are the ones a test sends on purpose. Every test
runs on both parsers the listener offers (httptools and h11).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> str:
    """The listener's HTTP parser under test."""
    return str(request.param)


def _config(url: str, parser: str, **listener: Any) -> dict[str, Any]:
    config = basic_config(url)
    config["listeners"] = [{"parser": parser, **listener}]
    return config


REFUSED = {400, 408, 431, 501}

SMUGGLED = b"GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = {
    "cl-and-te": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
    ),
    "te-and-cl": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"
    ),
    "two-content-lengths": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Content-Length: 41\r\n\r\n" + SMUGGLED
    ),
    "te-obfuscated": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED
    ),
    # A coding the gateway does not frame: forwarded as plain chunked once, so the
    # upstream read gzip bytes as the body. 501 (RFC 9112 §6.1) or 400.
    "te-gzip-chunked": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "te-chunked-twice": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
    "invalid-chunk-size": (
        b"POST /echo/front HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n"
    ),
    "bare-cr-in-value": b"GET /echo/front HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "space-before-colon": b"GET /echo/front HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n",
    "huge-header-line": (
        b"GET /echo/front HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    ),
}


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _statuses(raw: bytes) -> list[int]:
    return [
        int(line.split(b" ")[1])
        for line in raw.split(b"\r\n")
        if line.startswith(b"HTTP/1.1 ") and len(line.split(b" ")) > 1
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_request_refused(
    case: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """Ambiguous or malformed requests are refused and nothing reaches the upstream."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    raw = _exchange(gw.port, CASES[case])
    statuses = _statuses(raw)
    assert statuses == [] or statuses[0] in REFUSED, (case, raw[:200])
    if case == "huge-header-line":
        assert statuses == [431]  # refused by the gateway, not by the upstream's parser
    assert [r["path"] for r in a.requests if r["path"] != "/health"] == []


NORMALIZED = {
    # RFC 9112 §5.2: obs-fold replaced by SP before forwarding
    "obs-fold": (
        b"GET /echo/front HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Folded: a\r\n b\r\n\r\n",
        {"x-folded": "a b"},
    ),
    # RFC 9112 §2.2: a lone LF may end a line; forwarded as two clean header lines
    "bare-lf": (
        b"GET /echo/front HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: a\nX-B: b\r\n\r\n",
        {"x-a": "a", "x-b": "b"},
    ),
}


@pytest.mark.parametrize("case", sorted(NORMALIZED))
def test_lenient_input_is_normalized_before_forwarding(
    case: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """Input RFC 9112 lets a recipient repair is repaired (h11) or refused (httptools)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    payload, expected = NORMALIZED[case]
    raw = _exchange(gw.port, payload)
    forwarded = [r for r in a.requests if r["path"] != "/health"]
    if parser == "httptools" and _statuses(raw) == [400]:
        assert forwarded == []  # refusing is the other answer RFC 9112 allows
        return
    assert _statuses(raw) == [200]
    (record,) = forwarded
    seen = dict(record["headers"])
    assert {name: seen.get(name) for name in expected} == expected


def test_slowloris_headers_are_cut(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """A client dripping its header block gets a 408 and the connection is closed."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser, header_timeout=0.5))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /echo/slow HTTP/1.1\r\nHost: x\r\n")
        raw = b""
        for n in range(200):  # keeps dripping far past the header timeout
            try:
                sock.sendall(f"X-Drip-{n}: 1\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                sock.settimeout(0.05)
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    assert _statuses(raw) in ([], [408])
    assert a.hits("/echo/slow") == 0


def test_valid_request_after_refusal_tests_still_served(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """A well-formed request on the same listener is proxied (the cases above are not flukes)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    raw = _exchange(
        gw.port,
        b"POST /echo/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    assert _statuses(raw) == [200]
    assert [(r["path"], r["body_length"]) for r in a.requests if r["path"] != "/health"] == [
        ("/echo/ok", 5)
    ]


def test_endless_head_is_refused(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """A head that never ends is cut once it passes max_header_bytes (memory stays bounded)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser))
    line = b"X-Pad: " + b"a" * 200 + b"\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /echo/endless HTTP/1.1\r\nHost: x\r\n")
        raw = b""
        for _ in range(2000):  # up to ~400 KB, far past the 32 KiB default, never finished
            try:
                sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert _statuses(raw) in ([431], [400], [])
    if parser == "httptools":
        assert _statuses(raw) == [431]
    assert a.hits("/echo/endless") == 0


def test_late_head_after_keep_alive_gets_408(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """A head begun after a served request on the same connection is timed too (408)."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser, header_timeout=0.5))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /echo/first HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        sock.sendall(b"GET /echo/late HTTP/1.1\r\nHost: x\r\n")  # never finished
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert _statuses(first) == [200]
    assert b"HTTP/1.1 408" in raw
    assert a.hits("/echo/late") == 0


def _one_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body read off ``sock`` (less if it closes)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            return raw
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_idle_keep_alive_connection_is_not_timed_as_a_head(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, parser: str
) -> None:
    """A request whose head came whole leaves no head timer behind: the connection may
    stay idle past ``header_timeout`` (keep-alive is bounded separately) and serve the
    next request, with no 408 and no close in between."""
    a, _ = upstreams
    gw = run_gateway(_config(a.url, parser, header_timeout=0.5))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        answers = []
        for n in range(2):
            sock.sendall(f"GET /echo/idle-{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answers.append(_one_response(sock))
            time.sleep(1.0)  # twice the head timeout, idle between requests
    assert [_statuses(raw) for raw in answers] == [[200], [200]]
    assert a.hits("/echo/idle-0") == a.hits("/echo/idle-1") == 1
