"""Upstream fault server: a real-socket HTTP/1.1 server that misbehaves on request.

It runs ``asyncio.start_server`` on 127.0.0.1 (random port) in a background thread with
its own event loop. Routes live in :mod:`tests.servers.fault_routes`; see
``tests/servers/README.md`` for the endpoint table.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.servers.http1 import BadRequest, Request, ResponseWriter, read_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    Handler = Callable[[Request, ResponseWriter], Awaitable[None]]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fault server saw it (recorded once its body was fully read)."""

    time: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    connection_id: int


@dataclass(frozen=True)
class Route:
    """A regular expression matched against the whole path, and its handler.

    Capture groups are passed to the handler as ``request.path_params``.
    """

    pattern: re.Pattern[str]
    handler: Handler
    methods: frozenset[str] | None = None  # None: any method


class FaultServer:
    """Real-socket HTTP/1.1 test server. ``start()`` it, then use ``.url``."""

    def __init__(self, routes: Iterable[Route] | None = None) -> None:
        if routes is None:
            from tests.servers.fault_routes import ROUTES

            routes = ROUTES
        self._routes: list[Route] = list(routes)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._counters: Counter[str] = Counter()
        self._errors: list[BaseException] = []
        self._connections_opened = 0
        self._open_connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port = 0
        self._stopping = False

    # ----------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 10.0) -> FaultServer:
        if self._thread is not None:
            raise RuntimeError("FaultServer already started")
        self._ready.clear()
        self._stopping = False
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("fault server did not start in time")
        if self._startup_error is not None:
            raise RuntimeError("fault server failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and thread.is_alive():
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("fault server thread did not stop")
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._port}"

    def add_route(
        self, pattern: str, handler: Handler, methods: Iterable[str] | None = None
    ) -> Route:
        """Register an extra route at runtime; it takes precedence over existing ones.

        It stays for the server's lifetime (``reset()`` keeps it): on the session server
        use a unique path, or ``remove_route()`` it when done.
        """
        route = Route(re.compile(pattern), handler, frozenset(methods) if methods else None)
        with self._lock:
            self._routes.insert(0, route)
        return route

    def remove_route(self, route: Route) -> None:
        with self._lock:
            self._routes.remove(route)

    # --------------------------------------------------------------- observation
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def hits(self, path: str) -> int:
        return len(self.requests_to(path))

    @property
    def connections_opened(self) -> int:
        with self._lock:
            return self._connections_opened

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open_connections

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised by route handlers (bugs in the test server)."""
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Clear recorded requests, errors, per-key counters and the connection count."""
        with self._lock:
            self._requests.clear()
            self._counters.clear()
            self._errors.clear()
            self._connections_opened = 0

    def bump(self, key: str) -> int:
        """Increment a named counter (used by stateful routes) and return its new value."""
        with self._lock:
            self._counters[key] += 1
            return self._counters[key]

    # -------------------------------------------------------------------- loop
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            if not isinstance(exc, Exception):
                raise
            logger.exception("fault server loop crashed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, HOST, 0)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            self._stopping = True
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections_opened += 1
            self._open_connections += 1
            connection_id = self._connections_opened
        try:
            await self._serve_connection(reader, writer, connection_id)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request: expected in fault tests
        except asyncio.CancelledError:
            # stop() cancels connections; ending normally keeps asyncio's stream
            # callback from logging the cancelled task as an error.
            if not self._stopping:
                raise
        finally:
            with self._lock:
                self._open_connections -= 1
            self._tasks.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass  # peer reset the connection while we closed it

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection_id: int
    ) -> None:
        while True:
            try:
                request = await read_request(reader, writer, self, connection_id)
            except BadRequest as exc:
                await ResponseWriter(writer, "GET").send(
                    400, str(exc).encode(), {"Connection": "close"}, content_type="text/plain"
                )
                return
            if request is None:
                return
            self._record(request)
            response = ResponseWriter(writer, request.method)
            response.close_after = request.wants_close
            await self._dispatch(request, response)
            if response.aborted or not response.complete or response.close_after:
                return

    def _record(self, request: Request) -> None:
        recorded = RecordedRequest(
            time=time.monotonic(),
            method=request.method,
            path=request.path,
            query=request.query,
            headers=dict(request.headers),
            body=request.body,
            connection_id=request.connection_id,
        )
        with self._lock:
            self._requests.append(recorded)

    async def _dispatch(self, request: Request, response: ResponseWriter) -> None:
        with self._lock:
            routes = list(self._routes)
        try:
            for route in routes:
                match = route.pattern.fullmatch(request.path)
                if match is None:
                    continue
                if route.methods is not None and request.method not in route.methods:
                    await response.send_json({"error": "method not allowed"}, 405)
                    return
                request.path_params = match.groups()
                await route.handler(request, response)
                return
            await response.send_json({"error": "not found", "path": request.path}, 404)
        except (ConnectionError, asyncio.IncompleteReadError):
            raise
        except Exception as exc:
            if isinstance(exc, BadRequest) and not response.headers_sent:
                response.close_after = True
                await response.send_json({"error": str(exc)}, 400)
                return
            logger.exception("fault server handler crashed on %s", request.target)
            with self._lock:
                self._errors.append(exc)
            if response.headers_sent:
                response.abort()
            else:
                response.close_after = True
                await response.send_json({"error": repr(exc)}, 500)
