"""An origin for the edge-policy tests: aiohttp.web in a thread on 127.0.0.1.

- ``/c/{name}?cc=&sc=&ms=&n=&etag=&status=``: after ``ms`` milliseconds, a body of ``n``
  bytes (default a small JSON document; with ``status`` or ``fail_status`` set, an
  empty answer of that status) with ``Cache-Control: cc`` (and ``Surrogate-Control: sc``
  when given); hits counted per ``name``;
- ``/sse``: events until ``release("end")``;
- ``/doc``: a JSON object with ``id``, ``name``, ``secret``;
- ``/docfile``: the same object as a static file (ranges, HEAD, ETag, Accept-Ranges);
- ``/echo``: the request headers and query as JSON;
- ``/raw?b=&ct=&gz=&ce=``: the body ``b`` as sent, of type ``ct`` (default JSON); with
  ``gz`` set, gzip-encoded when the request accepts gzip; with ``ce=gzip`` gzip-encoded
  whatever the request accepts (an upstream that ignores ``Accept-Encoding``), with
  another ``ce`` labelled with that coding as it is;
- ``/auth``: a forward-auth service (200 for ``Bearer good``, 403 for ``Bearer banned``,
  200 with two UTF-8 ``X-User`` values for ``Bearer utf8``, 500 for ``Bearer broken``,
  else 401); ``/health``.

Every request is recorded.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

HOST = "127.0.0.1"


class EdgeOrigin:
    """One origin server; ``hits[name]`` counts requests per cacheable name."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.fail_status: int | None = None  # when set, /c/* answers with this status
        self.requests: list[dict[str, Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._gate: asyncio.Queue[str] | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._files = tempfile.TemporaryDirectory(prefix="edge-origin-")
        self.doc_file = Path(self._files.name) / "doc.json"
        self.doc_file.write_bytes(b'{"id": 7, "name": "widget", "secret": "s3"}')

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> EdgeOrigin:
        """Serve in a background thread."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("origin did not start")
        return self

    def stop(self) -> None:
        """Stop serving (again: nothing)."""
        if self._thread.is_alive() and self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._files.cleanup()

    def release(self, data: str) -> None:
        """Let the open ``/sse`` stream send one event (``"end"`` ends it)."""
        assert self.loop is not None and self._gate is not None
        self.loop.call_soon_threadsafe(self._gate.put_nowait, data)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._gate = asyncio.Queue()
        app = web.Application()
        app.router.add_route("*", "/c/{name}", self._cacheable)
        app.router.add_get("/sse", self._sse)
        app.router.add_get("/doc", self._doc)
        app.router.add_get("/docfile", self._docfile)
        app.router.add_get("/echo", self._echo)
        app.router.add_get("/raw", self._raw)
        app.router.add_get("/cutjson", self._cutjson)
        app.router.add_get("/health", self._health)
        app.router.add_get("/auth", self._auth)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self._sock).start()
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    def _record(self, request: web.Request) -> dict[str, Any]:
        record = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": {k.lower(): ",".join(request.headers.getall(k)) for k in request.headers},
        }
        self.requests.append(record)
        return record

    async def _cacheable(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        name = request.match_info["name"]
        self.hits[name] += 1
        query = request.query
        if "ms" in query:
            await asyncio.sleep(int(query["ms"]) / 1000)
        headers = {"Cache-Control": query.get("cc", "max-age=60")}
        if "sc" in query:
            headers["Surrogate-Control"] = query["sc"]
        if "etag" in query:
            headers["ETag"] = f'"{query["etag"]}"'
            if request.headers.get("If-None-Match") == headers["ETag"]:
                return web.Response(status=304, headers=headers)
        if "status" in query or self.fail_status is not None:
            status = self.fail_status or int(query["status"])
            return web.Response(status=status, headers=headers)
        if "n" in query:
            body = b"z" * int(query["n"])
            headers["Content-Type"] = "application/octet-stream"
        else:
            body = f'{{"name": "{name}", "hit": {self.hits[name]}}}'.encode()
            headers["Content-Type"] = "application/json"
        return web.Response(body=body, headers=headers)

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "max-age=60"}
        )
        await response.prepare(request)
        assert self._gate is not None
        while (data := await self._gate.get()) != "end":
            await response.write(f"data: {data}\n\n".encode())
        await response.write_eof()
        return response

    async def _docfile(self, request: web.Request) -> web.FileResponse:
        self._record(request)
        return web.FileResponse(self.doc_file, headers={"Content-Type": "application/json"})

    async def _doc(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"id": 7, "name": "widget", "secret": "s3"})

    async def _raw(self, request: web.Request) -> web.Response:
        self._record(request)
        content_type = request.query.get("ct", "application/json")
        body = request.query["b"].encode()
        headers = {"Content-Type": content_type}
        forced = request.query.get("ce")
        if forced is not None:
            body = gzip.compress(body) if forced == "gzip" else body
            headers["Content-Encoding"] = forced
        elif "gz" in request.query and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def _cutjson(self, request: web.Request) -> web.StreamResponse:
        """A JSON response that promises 1000 bytes and closes after a few."""
        self._record(request)
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "1000"}
        )
        await response.prepare(request)
        await response.write(b'{"id": 7, "name": "wid')
        assert request.transport is not None
        request.transport.close()
        return response

    async def _echo(self, request: web.Request) -> web.Response:
        return web.json_response(self._record(request))

    async def _auth(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.headers.get("Authorization") == "Bearer good":
            return web.Response(headers={"X-User": "alice", "X-Auth-Subject": "alice"})
        if request.headers.get("Authorization") == "Bearer banned":
            return web.Response(status=403)
        if request.headers.get("Authorization") == "Bearer throttled":
            return web.Response(status=429, headers={"Retry-After": "1"})
        if request.headers.get("Authorization") == "Bearer moved":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if request.headers.get("Authorization") == "Bearer utf8":
            lines = [("X-User", "z\u00fcr\u20ac"), ("X-User", "second")]
            return web.Response(headers=CIMultiDict(lines))
        if request.headers.get("Authorization") == "Bearer broken":
            return web.Response(status=500)
        return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="fa"'})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})
