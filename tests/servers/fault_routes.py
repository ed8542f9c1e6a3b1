"""Endpoints of the fault server.

To add one: write ``async def handler(req: Request, w: ResponseWriter) -> None`` and
decorate it with ``@route(r"/regex/(with)/(groups)")``. The regex must match the whole
path (no query); its groups arrive as ``req.path_params``. Per-key state goes through
``req.server.bump("name")`` so that ``FaultServer.reset()`` clears it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from tests.servers.fault import Route
from tests.servers.http1 import BadRequest, Request, ResponseWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tests.servers.fault import Handler

ROUTES: list[Route] = []

FIXED_LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
MAX_DELAY = 60.0
MAX_BYTES = 16 * 1024 * 1024


def route(pattern: str, methods: Iterable[str] | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler`` for paths fully matching ``pattern`` (first match wins)."""

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(re.compile(pattern), handler, frozenset(methods) if methods else None))
        return handler

    return register


def _status(value: str) -> int:
    code = int(value)
    if not 200 <= code <= 599:
        raise BadRequest(f"status {code} must be within 200..599")
    return code


# ------------------------------------------------------------------ plain answers
@route(r"/status/(\d{3})")
async def status(req: Request, w: ResponseWriter) -> None:
    code = _status(req.path_params[0])
    await w.send_json({"status": code}, code, req.extra_headers())


@route(r"/delay/(\d+(?:\.\d+)?)")
async def delay(req: Request, w: ResponseWriter) -> None:
    seconds = min(float(req.path_params[0]), MAX_DELAY)
    await asyncio.sleep(seconds)
    await w.send_json({"delay": seconds})


@route(r"/echo")
async def echo(req: Request, w: ResponseWriter) -> None:
    await w.send_json(
        {
            "method": req.method,
            "path": req.path,
            "query": parse_qs(req.query, keep_blank_values=True),
            "headers": req.headers,
            "body": req.body.decode("utf-8", errors="replace"),
            "body_length": len(req.body),
        }
    )


@route(r"/bytes/(\d+)")
async def bytes_(req: Request, w: ResponseWriter) -> None:
    n = int(req.path_params[0])
    if n > MAX_BYTES:
        raise BadRequest(f"at most {MAX_BYTES} bytes")
    await w.send(200, bytes(i % 256 for i in range(n)), content_type="application/octet-stream")


@route(r"/close")
async def close(req: Request, w: ResponseWriter) -> None:
    await w.send_json({"closed": True}, headers={"Connection": "close"})


# -------------------------------------------------------------------- stateful
@route(r"/flaky/([^/]+)/(\d+)/(\d{3})")
async def flaky(req: Request, w: ResponseWriter) -> None:
    key, n, code = req.path_params[0], int(req.path_params[1]), _status(req.path_params[2])
    attempt = req.server.bump(f"flaky:{key}")
    if attempt <= n:
        await w.send_json({"status": code, "attempt": attempt}, code, req.extra_headers())
    else:
        await w.send_json({"ok": True, "attempt": attempt})


@route(r"/retry-after/([^/]+)/(\d+)")
async def retry_after(req: Request, w: ResponseWriter) -> None:
    key, n = req.path_params[0], int(req.path_params[1])
    after = req.param("after", "1") or "1"
    attempt = req.server.bump(f"retry-after:{key}")
    if attempt > n:
        await w.send_json({"ok": True, "attempt": attempt})
        return
    headers = [("Retry-After", after)]
    if req.param("ratelimit") == "1":
        headers += [
            ("RateLimit-Limit", str(n)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", after),
        ]
    await w.send_json({"status": 429, "attempt": attempt}, 429, headers)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(if_modified_since: str) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored (RFC 9110 13.1.3)
    return parsedate_to_datetime(FIXED_LAST_MODIFIED) <= since


@route(r"/cache/([^/]+)")
async def cache(req: Request, w: ResponseWriter) -> None:
    name = req.path_params[0]
    hit = req.server.bump(f"cache:{name}")
    payload = {"name": name, "hit": hit, "accept": req.header("accept")}
    if req.method not in ("GET", "HEAD"):
        await w.send_json(payload)
        return
    headers: list[tuple[str, str]] = []
    cache_control = req.param("cc")
    if cache_control is None and req.param("max_age") is not None:
        cache_control = f"max-age={req.int_param('max_age', 0)}"
    if cache_control is not None:
        headers.append(("Cache-Control", cache_control))
    etag = req.param("etag")
    if etag is not None:
        etag = f'"{etag}"'
        headers.append(("ETag", etag))
    if req.param("last_modified") == "1":
        headers.append(("Last-Modified", FIXED_LAST_MODIFIED))
    if req.param("vary") is not None:
        headers.append(("Vary", req.param("vary") or "Accept"))
    now = time.time()
    if req.param("expires") is not None:
        headers.append(("Expires", formatdate(now + req.int_param("expires", 0), usegmt=True)))
    headers.append(("Date", formatdate(now, usegmt=True)))

    inm, ims = req.header("if-none-match"), req.header("if-modified-since")
    if etag is not None and inm is not None:
        not_modified = _etag_matches(inm, etag)
    elif req.param("last_modified") == "1" and ims is not None and inm is None:
        not_modified = _not_modified_since(ims)
    else:
        not_modified = False
    if not_modified:
        await w.send(304, headers=headers)
    else:
        await w.send_json(payload, headers=headers)


# ------------------------------------------------------------- broken transport
@route(r"/drop")
async def drop(req: Request, w: ResponseWriter) -> None:
    w.abort(rst=req.param("rst") == "1")


@route(r"/drop-after-headers")
async def drop_after_headers(req: Request, w: ResponseWriter) -> None:
    await w.send_head(200, [("Content-Type", "text/plain"), ("Content-Length", "100")])
    w.abort()


@route(r"/truncated")
async def truncated(req: Request, w: ResponseWriter) -> None:
    await w.send_head(200, [("Content-Type", "text/plain"), ("Content-Length", "1000")])
    await w.write(b"0123456789")
    w.abort()


@route(r"/slow-body")
async def slow_body(req: Request, w: ResponseWriter) -> None:
    chunks, interval = req.int_param("chunks", 10), req.float_param("interval", 0.1)
    await w.send_head(200, [("Content-Type", "text/plain"), ("Content-Length", str(chunks))])
    for _ in range(chunks):
        await asyncio.sleep(interval)
        await w.write(b"x")
    w.finish()


@route(r"/stream")
async def stream(req: Request, w: ResponseWriter) -> None:
    chunks, size = req.int_param("chunks", 10), req.int_param("size", 1024)
    interval = req.float_param("interval", 0.0)
    if chunks * size > MAX_BYTES:
        raise BadRequest(f"at most {MAX_BYTES} bytes")
    await w.send_head(
        200, [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]
    )
    for i in range(chunks):
        if interval and i:
            await asyncio.sleep(interval)
        await w.write_chunk(bytes([ord("a") + i % 26]) * size)
    await w.end_chunks()


@route(r"/sse")
async def sse(req: Request, w: ResponseWriter) -> None:
    events, interval = req.int_param("events", 3), req.float_param("interval", 0.0)
    w.close_after = True  # no Content-Length: the body ends when the connection does
    await w.send_head(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    for i in range(events):
        if interval and i:
            await asyncio.sleep(interval)
        await w.write(f"data: {i}\n\n".encode())
    w.finish()


# -------------------------------------------------------------------- redirects
@route(r"/redirect/(\d+)")
async def redirect(req: Request, w: ResponseWriter) -> None:
    n = int(req.path_params[0])
    if n == 0:
        await w.send_json({"redirect": 0, "done": True})
        return
    body = json.dumps({"redirect": n}).encode()
    await w.send(302, body, {"Location": f"/redirect/{n - 1}"}, content_type="application/json")


@route(r"/redirect-to")
async def redirect_to(req: Request, w: ResponseWriter) -> None:
    url = req.param("url")
    if not url:
        raise BadRequest("url= is required")
    code = req.int_param("status", 302)
    if not 300 <= code <= 399:
        raise BadRequest("status must be a 3xx code")
    await w.send(code, b"", {"Location": url})


# Route families kept in their own modules; importing them registers their routes.
from tests.servers import fault_routes_auth as fault_routes_auth  # noqa: E402
from tests.servers import fault_routes_pages as fault_routes_pages  # noqa: E402
