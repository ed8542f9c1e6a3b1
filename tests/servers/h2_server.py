"""An HTTP/2 (and HTTP/1.1) TLS server: hypercorn + a tiny ASGI app on 127.0.0.1.

The certificate comes from a throw-away ``trustme`` CA, valid for 127.0.0.1 and
localhost; clients trust it through ``ssl_context()`` or ``ca_cert_path``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseStartEvent,
    Scope,
)

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class H2Server:
    """hypercorn in a background thread; ``start()`` it, then use ``.url``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: set[tuple[str, int]] = set()
        self._requests = 0
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self.ca_cert_path = ""

    # -------------------------------------------------------------------- ASGI app
    async def app(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise RuntimeError(f"unsupported ASGI scope {scope['type']!r}")
        client = scope.get("client")
        with self._lock:
            self._requests += 1
            if client is not None:
                self._clients.add((str(client[0]), int(client[1])))
        body = json.dumps({"http_version": scope["http_version"], "path": scope["path"]})
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body.encode(), "more_body": False})

    # ----------------------------------------------------------------- observation
    @property
    def connections_seen(self) -> int:
        """Distinct client connections (peer host, port) that sent at least one request."""
        with self._lock:
            return len(self._clients)

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return self._requests

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._requests = 0

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A fresh client context that trusts the test CA (and nothing else)."""
        return ssl.create_default_context(cafile=self.ca_cert_path)

    # ------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 10.0) -> H2Server:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="flext-h2-")
        tmp = Path(self._tmpdir.name)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_cert_path = str(tmp / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_cert_path)
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((HOST, 0))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            # hypercorn takes ownership of (and closes) the duplicated descriptor.
            fd = os.dup(listener.fileno())
        finally:
            listener.close()

        config = Config()
        config.bind = [f"fd://{fd}"]
        config.certfile = config.keyfile = str(tmp / "server.pem")
        config.alpn_protocols = ["h2", "http/1.1"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="h2-server", daemon=True
        )
        self._thread.start()
        self._wait_ready(timeout)
        return self

    def _run(self, config: Config) -> None:
        try:
            asyncio.run(self._main(config))
        except Exception as exc:
            self._error = exc
            logger.exception("h2 server crashed")

    async def _main(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await serve(self.app, config, shutdown_trigger=self._stop_event.wait, mode="asgi")

    def _wait_ready(self, timeout: float) -> None:
        """Complete one TLS handshake, which proves hypercorn is accepting."""
        deadline = time.monotonic() + timeout
        context = self.ssl_context()
        while True:
            if self._error is not None or (self._thread and not self._thread.is_alive()):
                self.stop()
                raise RuntimeError("h2 server failed to start") from self._error
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as raw, \
                        context.wrap_socket(raw, server_hostname=HOST):  # fmt: skip
                    return
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is not None:
            if loop is not None and event is not None and thread.is_alive():
                loop.call_soon_threadsafe(event.set)
            thread.join(10)
            if thread.is_alive():
                raise RuntimeError("h2 server thread did not stop")
        self._thread = self._loop = self._stop_event = None
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            tmpdir.cleanup()

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
