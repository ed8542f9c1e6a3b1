"""A tiny real HTTP upstream for discovery tests: one instance of a service.

It runs aiohttp's server in its own thread on 127.0.0.1 and can be stopped and
started again on the same port (an instance that dies and comes back). Routes:

* ``GET /id`` - the instance's name (which instance answered);
* ``GET /health`` - ``health_status`` (200 unless a test changes it);
* ``GET /work`` - ``work_status`` (200 unless a test makes it fail);
* ``POST /verify`` - echoes the JSON body with the instance name.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from aiohttp import web

HOST = "127.0.0.1"


class Upstream:
    """One upstream instance; ``start()`` it, then use ``.url``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.health_status = 200
        self.work_status = 200
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def hit_count(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def _count(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    async def _id(self, request: web.Request) -> web.Response:
        self._count("/id")
        return web.Response(text=self.name)

    async def _health(self, request: web.Request) -> web.Response:
        self._count("/health")
        return web.Response(status=self.health_status, text="ok")

    async def _work(self, request: web.Request) -> web.Response:
        self._count("/work")
        return web.Response(status=self.work_status, text=self.name)

    async def _verify(self, request: web.Request) -> web.Response:
        self._count("/verify")
        body = await request.json()
        return web.json_response({"instance": self.name, **body})

    def start(self) -> Upstream:
        """Serve on ``self.port`` (a free one the first time); returns once listening."""
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=f"upstream-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("upstream did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every connection (the instance dies)."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/id", self._id)
        app.router.add_get("/health", self._health)
        app.router.add_get("/work", self._work)
        app.router.add_post("/verify", self._verify)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
