"""The admin port's edge pages: the live dashboard and the cache purge endpoint.

- ``GET /dashboard``: the dashboard page (HTML, JS and CSS bundled in the package; no
  CDN, no build step). The page reads the admin token from its URL fragment
  (``/dashboard#token=...``, never sent to a server or a log) and sends it as a bearer
  token;
- ``GET /dashboard/data``: one JSON snapshot (routes, clusters, instances, series);
- ``GET /dashboard/events``: the same snapshot as Server-Sent Events, every
  ``interval`` seconds, until the client goes away;
- ``POST /admin/cache/purge?url=<absolute URL>``: drop that URL's stored responses
  (no ``url``: drop every entry).

Everything but the page itself needs ``Authorization: Bearer <admin.token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from starlette.types import Receive, Scope, Send

from .._errors import FlextApiError
from ._redact import redact

if TYPE_CHECKING:
    from ._admin import AdminApp

__all__ = ["handles", "serve"]

_ASSETS = {
    "/dashboard": ("index.html", b"text/html; charset=utf-8"),
    "/dashboard/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/dashboard/style.css": ("style.css", b"text/css; charset=utf-8"),
}
# The one method each endpoint answers (the pages' GET is the one needing no token).
_METHODS = {
    **dict.fromkeys(_ASSETS, "GET"),
    "/dashboard/data": "GET",
    "/dashboard/events": "GET",
    "/admin/cache/purge": "POST",
}
_Headers = Sequence[tuple[bytes, bytes]]  # extra response headers
_WINDOW = 120  # seconds of series on the charts
_DRAIN_CHECK = 0.25  # s between two looks at the gateway's draining flag in a stream
_SECURITY = [
    (b"content-security-policy", b"default-src 'self'; connect-src 'self'; img-src 'self' data:"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


def handles(path: str) -> bool:
    """True for the paths this module serves."""
    return path == "/dashboard" or path.startswith(("/dashboard/", "/admin/cache/"))


def snapshot(admin: AdminApp) -> dict[str, Any]:
    """What the dashboard shows, now (passwords in instance URLs redacted)."""
    gateway = admin.gateway
    edge = gateway.edge
    current = gateway.snapshot
    now = gateway.clock.time()
    routes = []
    for route in current.config.routes:
        series = edge.series.routes.get(route.name)
        routes.append(
            {
                "name": route.name,
                "cluster": route.cluster,
                "cache": route.cache,
                "rejections": edge.rejections.get(route.name, 0),
                **(series.totals(now, 60) if series is not None else
                   {"rps": 0.0, "error_ratio": 0.0, "p99": None}),
                "series": series.points(now, _WINDOW) if series is not None else [],
            }
        )  # fmt: skip
    cache = edge.cache
    return {
        "now": now,
        "status": "draining" if gateway.draining else "serving",
        "routes": routes,
        "clusters": redact([c.describe() for c in current.clusters.values()]),
        "cache": None
        if cache is None
        else {"hit_ratio": cache.stats.hit_ratio, "counts": cache.stats.counts},
        "rejections": sum(edge.rejections.values()),
    }


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: _Headers = ()
) -> None:
    """One whole response; ``extra`` headers go after the content ones, before
    :data:`_SECURITY`."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        *extra,
        *_SECURITY,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _events(admin: AdminApp, receive: Receive, send: Send, interval: float) -> None:
    headers = [(b"content-type", b"text/event-stream"), *_SECURITY]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    gateway = admin.gateway
    try:
        while not gone.is_set():
            last = gateway.draining
            data = b"data: " + orjson.dumps(snapshot(admin)) + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if last:
                # Shutdown: this snapshot said "draining"; end the stream, or the admin
                # server would wait for it for its whole grace period and then cut it.
                break
            # Wake for the next snapshot, the client leaving, or the gateway draining.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + interval
            while not gone.is_set() and not gateway.draining:
                left = deadline - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, _DRAIN_CHECK)):
                        await gone.wait()
    except OSError:
        return  # the client went away mid-write
    finally:
        watcher.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def serve(admin: AdminApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one request for a path :func:`handles` accepts."""
    path, method = scope["path"], scope["method"]
    allowed = _METHODS.get(path)
    asset = _ASSETS.get(path)
    if asset is not None and method == allowed:  # the page needs no token
        body = resources.files(__package__).joinpath("dashboard", asset[0]).read_bytes()
        await _respond(send, 200, body, asset[1])
        return
    if not admin.authorized(scope):
        await _respond(send, 401, b'{"error": "admin token required"}', b"application/json")
        return
    if allowed is None:
        await _respond(send, 404, b'{"error": "not found"}', b"application/json")
        return
    if method != allowed:  # a known endpoint, the wrong method
        allow = [(b"allow", allowed.encode())]
        await _error(send, 405, f"method not allowed; use {allowed}", allow)
        return
    if not admin.started:  # no snapshot yet to show or purge
        await _error(send, 503, "the gateway is starting", [(b"retry-after", b"1")])
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if path == "/dashboard/data":
        await _respond(send, 200, orjson.dumps(snapshot(admin)), b"application/json")
        return
    if path == "/dashboard/events":
        try:
            interval = float(query.get("interval", ["1"])[0] or 1)
        except ValueError:
            await _error(send, 400, "interval must be a number of seconds")
            return
        # Between 0.2 and 10 s (NaN: 1 s).
        interval = min(10.0, max(0.2, interval)) if interval == interval else 1.0
        await _events(admin, receive, send, interval)
        return
    # /admin/cache/purge: the one endpoint left (an asset's GET was answered above).
    await _purge(admin, query.get("url"), send)


async def _purge(admin: AdminApp, urls: list[str] | None, send: Send) -> None:
    """Drop the entry of the one absolute URL given, or every entry when none is."""
    gateway = admin.gateway
    # The cache of the config in force, as a request would find it: Edge.cache is only
    # set once a request has compiled the config (a purge sent to a gateway that had
    # proxied nothing yet was a 404, and left a shared Redis store untouched).
    cache = gateway.edge.compiled(gateway.snapshot.config).cache
    if cache is None:
        await _error(send, 404, "no route has cache: true")
        return
    url = None
    if urls is not None:
        # An empty or relative url (a script's unset variable...) must not purge all.
        try:
            parts = urlsplit(urls[0])
            parts.port  # noqa: B018 - raises on a port that is not one (http://a:x/)
        except ValueError:  # http://[::1/x: not a URL at all
            parts = None
        if (
            parts is None
            or len(urls) > 1
            or parts.scheme not in ("http", "https")
            or not parts.netloc
        ):
            await _error(
                send, 400, "url must be one absolute http(s) URL; leave it out to purge all"
            )
            return
        url = urls[0]
    try:
        dropped = await cache.purge(url)
    except FlextApiError as exc:  # the store (Redis) is down: nothing was purged
        await _error(send, 503, f"the cache store did not answer: {exc.message}")
        return
    payload = {"purged": url or "*", "dropped": dropped}
    await _respond(send, 200, orjson.dumps(payload), b"application/json")


async def _error(send: Send, status: int, message: str, extra: _Headers = ()) -> None:
    body = orjson.dumps({"error": message})
    await _respond(send, status, body, b"application/json", extra)
