"""Serving a gateway: uvicorn, the admin API, reload triggers and graceful shutdown.

The parser is the listener's ``parser``: httptools when installed (``auto``), else h11;
both refuse every request-smuggling case in ``tests/integration/gateway/test_smuggling.py``
(docs/gateway.md has the comparison).

Shutdown on SIGTERM/SIGINT: readiness turns 503 and new requests on open connections get
a 503 ``draining``; uvicorn stops accepting; proxied WebSockets are closed with 1001
(going away); in-flight requests get up to ``drain_timeout`` seconds to finish; then the
upstream pools close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from ..server._protocol import protocol_with_header_timeout
from ._admin import AdminApp
from ._app import Gateway, create_gateway
from ._config import GatewayConfig, ListenerConfig
from ._proxy import UpstreamCut
from ._reload import Reloader

__all__ = ["GatewayRunner", "GatewayServer", "serve", "uvicorn_config"]


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    *,
    drain_timeout: float = 30.0,
    listener: ListenerConfig | None = None,
) -> Any:
    """uvicorn settings of the gateway: a head timeout, no headers of its own.

    The parser is the listener's (httptools when installed, by default).
    """
    listener = listener or ListenerConfig()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_with_header_timeout(
            listener.header_timeout,
            parser=listener.parser,
            max_head_bytes=listener.max_header_bytes,
            bound_parsed_heads=False,  # the gateway answers those with its own 431
            # Fresh cache hits are answered by the protocol, without an ASGI call.
            answer_now=app.answer_now if isinstance(app, Gateway) else None,
        ),
        h11_max_incomplete_event_size=listener.max_header_bytes,
        ws="wsproto",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        access_log=False,
        log_level="warning",
        # Seconds as given: uvicorn hands it to asyncio.timeout, which takes a float (its
        # int annotation made 0.5 and 0 into "no bound" here once).
        timeout_graceful_shutdown=drain_timeout,  # type: ignore[arg-type]
        timeout_keep_alive=75,
    )


class _QuietCuts(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" record (and its traceback) for an
    upstream that cut its response: the gateway cuts the client's stream by raising
    :class:`UpstreamCut` on purpose, and its access log already has the request with
    reason ``upstream_cut``. Anything else uvicorn logs passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        return not (info and isinstance(info[1], UpstreamCut))


_QUIET_CUTS = _QuietCuts()


class GatewayServer(uvicorn.Server):
    """uvicorn's server that drains the gateway and closes WebSockets with 1001 first."""

    def __init__(self, config: Any, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        logging.getLogger("uvicorn.error").addFilter(_QUIET_CUTS)  # once: a set

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.gateway.draining = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: Any = None) -> None:
        self.gateway.draining = True
        await self.gateway.close_websockets(1001, "gateway shutting down")
        await super().shutdown(sockets)


#: The longest the admin server waits for its open requests at shutdown (seconds).
ADMIN_GRACE = 5.0


class GatewayRunner:
    """One gateway process: the gateway, its uvicorn server, the admin API and reloads.

    ``sockets`` (already bound) replace the listener's host and port, as in uvicorn.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | None = None,
        port: int | None = None,
        host: str | None = None,
        sockets: list[socket.socket] | None = None,
        admin_sockets: list[socket.socket] | None = None,
    ) -> None:
        self.gateway = create_gateway(config)
        listener = config.listeners[0]
        self.server = GatewayServer(
            uvicorn_config(
                self.gateway,
                host or listener.host,
                listener.port if port is None else port,
                drain_timeout=config.drain_timeout,
                listener=listener,
            ),
            self.gateway,
        )
        self.sockets = sockets
        self.admin_sockets = admin_sockets
        self.config = config
        self.reloader = Reloader(self.gateway, config_path) if config_path is not None else None
        self.admin = AdminApp(self.gateway, self.reloader)
        self.admin_server: uvicorn.Server | None = None
        # Served with a token, or when the config has an ``admin`` section: then, without
        # a token, it answers the open paths (/health, /ready, /metrics: what probes and
        # scrapers need) and nothing behind the token.
        if config.admin.token is not None or "admin" in config.model_fields_set:
            admin = config.admin
            # The admin server stops after the proxy has drained; what is left on it is
            # admin calls and dashboard streams (which end at once when draining), so its
            # grace is short: a dashboard client that never reads held it 30 s.
            grace = min(config.drain_timeout, ADMIN_GRACE)
            self.admin_server = uvicorn.Server(
                uvicorn_config(self.admin, admin.host, admin.port, drain_timeout=grace)
            )
        # Reloads asked for by SIGHUP still running (each removes itself when done).
        self._reloads: set[asyncio.Task[Any]] = set()

    def stop(self) -> None:
        """Ask the server to drain and exit (what SIGTERM does)."""
        self.gateway.draining = True
        self.server.should_exit = True

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT (in the main thread) or :meth:`stop`."""
        tasks: list[asyncio.Task[Any]] = []
        admin_server = self.admin_server
        if admin_server is not None:
            tasks.append(asyncio.create_task(admin_server._serve(self.admin_sockets)))
        loop = asyncio.get_running_loop()
        reloader = self.reloader
        if reloader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGHUP, self.reload_soon)
            if self.config.watch:
                tasks.append(asyncio.create_task(reloader.watch()))
        try:
            await self.server.serve(self.sockets)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            if admin_server is not None:
                admin_server.should_exit = True
            for task in [*tasks[1 if admin_server is not None else 0 :], *self._reloads]:
                task.cancel()
            await asyncio.gather(*tasks, *self._reloads, return_exceptions=True)

    def reload_soon(self) -> None:
        """Start a reload from the file (what SIGHUP does); nothing without a file.

        The task is kept only while it runs: a storm of SIGHUPs does not pile up
        finished tasks for the life of the process.
        """
        if self.reloader is None:
            return
        task = asyncio.get_running_loop().create_task(self.reloader.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)


def serve(
    config: GatewayConfig,
    *,
    config_path: Path | None = None,
    port: int | None = None,
    host: str | None = None,
) -> None:
    """Run the gateway in this process (blocks until it stops)."""
    runner = GatewayRunner(config, config_path=config_path, port=port, host=host)
    if runner.admin_server is not None and runner.admin_sockets is None:
        # Bound here: uvicorn failing to bind it inside the running loop ended the
        # process with its exit from a task and a page of tracebacks.
        admin = config.admin
        runner.admin_sockets = [bind_listener(admin.host, admin.port, "the admin API")]
    # uvloop when installed (uvicorn's "auto"), as uvicorn.run would.
    with (
        _interrupt_stops(runner),
        asyncio.Runner(loop_factory=runner.server.config.get_loop_factory()) as loop_runner,
    ):
        loop_runner.run(runner.run())


def bind_listener(host: str, port: int, what: str) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it); OSError saying which
    listener could not be bound, and why, otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno, f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _interrupt_stops(runner: GatewayRunner) -> Iterator[None]:
    """While serving, Ctrl-C (SIGINT) asks ``runner`` to drain and stop; a second one
    interrupts at once.

    uvicorn handles SIGINT itself while it serves, then raises it again once its
    shutdown is done; under ``asyncio.Runner``'s own handler that cancelled the
    gateway's clean-up (admin server, file watch) and ended in a KeyboardInterrupt
    traceback. This handler is what it raises it to (``asyncio.Runner`` installs none
    over a handler that is not Python's default). Outside the main thread: nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[bool] = []

    def on_interrupt(signum: int, frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        runner.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
