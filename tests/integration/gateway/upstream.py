"""A recording upstream for the gateway tests: aiohttp.web in a thread on 127.0.0.1.

Endpoints: ``/echo/...`` (method, path, query, headers, body length as JSON), ``/upload``
(counts a streamed body), ``/download?n=`` (streams ``n`` bytes), ``/sse`` (one event per
``release()`` of the test's gate), ``/cut`` (a head and half a body, then the connection
is dropped), ``/drop-after-body`` (reads the body, then drops the connection), ``/ws``
(echo; a text ``close:CODE:REASON`` makes it close with that code, ``big:N`` makes it
send a text message of ``N`` bytes), ``/status/N``, ``/health`` (records the port each
probe came from in ``probe_ports``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeVar

from aiohttp import WSMsgType, web

HOST = "127.0.0.1"
_CHUNK = b"x" * 65536


class RawUpstream(Protocol):
    """A hand-written upstream: ``handle`` serves one connection; ``url`` is set once it
    listens."""

    url: str

    def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
        """Serve one connection."""


_Raw = TypeVar("_Raw", bound=RawUpstream)


@contextlib.asynccontextmanager
async def listening(upstream: _Raw) -> AsyncIterator[_Raw]:
    """``upstream`` serving on a free port of 127.0.0.1 (its ``url`` set) until the block ends."""
    listener = await asyncio.start_server(upstream.handle, HOST, 0)
    upstream.url = f"http://{HOST}:{listener.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        listener.close()
        await listener.wait_closed()


class Upstream:
    """One upstream instance; ``name`` is echoed so tests see which instance answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.ws_closes: list[int | None] = []
        #: The client port of each ``/health`` probe, in order (one per prober's connection).
        self.probe_ports: list[int] = []
        self.sse_gate: asyncio.Queue[str] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def hits(self, path: str) -> int:
        """How many requests reached ``path``."""
        return sum(1 for r in self.requests if r["path"] == path)

    def open_connections(self) -> int:
        """How many client connections are open to this instance now."""
        assert self.loop is not None

        async def count() -> int:
            assert self._runner is not None and self._runner.server is not None
            return len(self._runner.server.connections)

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(10)

    def release(self, data: str) -> None:
        """Let the open ``/sse`` stream send one event with ``data``."""
        assert self.loop is not None and self.sse_gate is not None
        self.loop.call_soon_threadsafe(self.sse_gate.put_nowait, data)

    def start(self) -> Upstream:
        """Serve in a background thread."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("upstream did not start")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sse_gate = asyncio.Queue()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/echo{tail:.*}", self._echo)
        app.router.add_post("/upload", self._upload)
        app.router.add_get("/download", self._download)
        app.router.add_get("/sse", self._sse)
        app.router.add_get("/cut", self._cut)
        app.router.add_route("*", "/drop-after-body", self._drop_after_body)
        app.router.add_get("/ws", self._ws)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_get("/health", self._health)
        app.router.add_get("/slow", self._slow)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.SockSite(runner, self._sock)
        await site.start()
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    def _record(self, request: web.Request, body_length: int = 0) -> dict[str, Any]:
        record = {
            "instance": self.name,
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": request.query_string,
            "headers": [[k.lower(), v] for k, v in request.headers.items()],
            "body_length": body_length,
        }
        self.requests.append(record)
        return record

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = self._record(request, len(body))
        return web.json_response(record, headers={"X-Upstream": self.name})

    async def _upload(self, request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
        self._record(request, total)
        return web.json_response({"received": total})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        remaining = int(request.query["n"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = remaining
        await response.prepare(request)
        while remaining > 0:
            piece = _CHUNK[: min(remaining, len(_CHUNK))]
            await response.write(piece)
            remaining -= len(piece)
        await response.write_eof()
        return response

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        assert self.sse_gate is not None
        while True:
            data = await self.sse_gate.get()
            if data == "end":
                break
            await response.write(f"data: {data}\n\n".encode())
        await response.write_eof()
        return response

    async def _cut(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        response = web.StreamResponse()
        response.content_length = 1_000_000
        await response.prepare(request)
        await response.write(b"y" * 1000)
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    async def _drop_after_body(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self._record(request, len(body))
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self._record(request)
        ws = web.WebSocketResponse(protocols=("chat.v2", "chat.v1"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if msg.data.startswith("close:"):
                    _, code, reason = msg.data.split(":", 2)
                    await ws.close(code=int(code), message=reason.encode())
                    break
                if msg.data.startswith("big:"):
                    with contextlib.suppress(ConnectionError):  # refused mid-send
                        await ws.send_str("b" * int(msg.data[4:]))
                    continue
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        self.ws_closes.append(ws.close_code)
        return ws

    async def _slow(self, request: web.Request) -> web.Response:
        self._record(request)
        await asyncio.sleep(int(request.query["ms"]) / 1000)
        return web.json_response({"slow": True})

    async def _health(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer is not None:
            self.probe_ports.append(peer[1])
        return web.json_response({"status": "pass"})

    async def _status(self, request: web.Request) -> web.Response:
        await request.read()
        self._record(request)
        code = int(request.match_info["code"])
        return web.Response(status=code, text=json.dumps({"status": code, "instance": self.name}))
