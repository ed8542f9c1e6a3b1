"""A real uvicorn on 127.0.0.1 in a thread, and raw-socket helpers (shared by test suites)."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

HOST = "127.0.0.1"


class LiveServer:
    """uvicorn serving ``app`` in a background thread on a random 127.0.0.1 port.

    uvicorn's own proxy-header handling is off so the app's ``trusted_proxies`` logic
    is what decides (uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1). The
    parser is pinned to h11 and the loop to asyncio: the server tests check what the app
    does with input h11 lets through (httptools, when installed, refuses more of it).
    """

    def __init__(self, app: FastAPI, *, http: Any = "h11") -> None:
        """``http``: uvicorn's protocol (a name, or a class such as the protocols of
        ``flext-api serve``, :func:`~flext_api.server._protocol.protocol_with_header_timeout`)."""
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http=http,
            loop="asyncio",
            lifespan="on",
            access_log=False,
            log_level="warning",
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> LiveServer:
        """Run the server thread; return once uvicorn reports it has started."""
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for its thread, close the socket."""
        self.server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join(10)
        self._sock.close()


@pytest.fixture
def live() -> Iterator[Callable[..., LiveServer]]:
    """``live(app)`` serves ``app`` on a real socket until the test ends."""
    with ExitStack() as stack:

        def start(app: FastAPI, *, http: Any = "h11") -> LiveServer:
            server = LiveServer(app, http=http)
            stack.callback(server.stop)  # registered first: a failed start still cleans up
            return server.start()

        yield start


def raw_http(port: int, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes to 127.0.0.1:port and read until the server closes."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def response_headers(raw: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Status and header lines of a raw HTTP/1.1 response."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = [
        (n.strip().lower(), v.strip()) for n, _, v in (line.partition(":") for line in lines)
    ]
    return int(status_line.split()[1]), headers


def wait_for_records(stream: io.StringIO, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The stream's JSON records once at least ``count`` access records are written."""
    deadline = time.monotonic() + timeout
    while True:
        lines = stream.getvalue().splitlines()
        parsed = [json.loads(line) for line in lines]
        if sum(r.get("event") == "request" for r in parsed) >= count or time.monotonic() > deadline:
            return parsed
        time.sleep(0.01)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
