"""``flext-api serve``'s protocol on h11 (what runs when httptools is not installed).

The h11 protocol must keep the promises of docs/cli.md as the httptools one does: a
request head over ``max_head_bytes`` is a 431 and a close, whether it arrives whole in
one read or in pieces.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from flext_api.server._protocol import protocol_with_header_timeout
from tests.server.live import HOST, response_headers

MAX_HEAD = 4096


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def h11_port() -> Iterator[int]:
    """A port served by uvicorn on the h11 protocol of ``flext-api serve``."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    config = uvicorn.Config(
        _app,
        http=protocol_with_header_timeout(30.0, parser="h11", max_head_bytes=MAX_HEAD),
        h11_max_incomplete_event_size=MAX_HEAD,  # as `flext-api serve` sets it
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _exchange(port: int, *parts: bytes) -> bytes:
    """Send ``parts`` one ``send()`` each, then read until the server closes."""
    with socket.create_connection((HOST, port), timeout=30) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def test_h11_head_within_the_bound_is_served(h11_port: int) -> None:
    """A head under ``max_head_bytes`` is served as usual."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000 + b"\r\nConnection: close\r\n\r\n"
    assert response_headers(_exchange(h11_port, head))[0] == 200


def test_h11_oversized_head_in_one_piece_is_431(h11_port: int) -> None:
    """A head over ``max_head_bytes`` that arrives whole in one read is a 431, not served."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8000 + b"\r\nConnection: close\r\n\r\n"
    assert _exchange(h11_port, head).startswith(b"HTTP/1.1 431 ")


def test_h11_oversized_head_in_pieces_is_431(h11_port: int) -> None:
    """A head that grows past ``max_head_bytes`` over several reads is a 431, not a 400."""
    answer = _exchange(
        h11_port, b"GET / HTTP/1.1\r\nHost: x\r\n", *[b"X-Pad: " + b"a" * 500 + b"\r\n"] * 12
    )
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_h11_body_after_a_small_head_is_not_counted(h11_port: int) -> None:
    """Only the head counts: a body far larger than the bound, in the same read, is served."""
    body = b"x" * (4 * MAX_HEAD)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    assert response_headers(_exchange(h11_port, head + body))[0] == 200
