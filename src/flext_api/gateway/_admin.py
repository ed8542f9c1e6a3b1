"""The admin API, served on its own port (127.0.0.1 by default).

Open to anyone who can reach the port (probes and scrapers need no secret):

- ``GET /health``: the gateway and the aggregated state of every cluster, as in the
  seed: ``{"status", "services": {name: {"healthy", "total", "status"}}}``;
- ``GET /ready``: 200, or 503 until the gateway has started and once it drains;
- ``GET /metrics``: Prometheus text.

Behind ``Authorization: Bearer <admin.token>`` (compared in constant time; 503 while the
gateway is still starting: the admin port answers before its first snapshot is built):

- ``GET /admin/routes``, ``GET /admin/clusters`` (instances with breaker, ejection and
  drain state), ``GET /admin/config`` (secrets redacted);
- ``POST /admin/reload`` (from the config file; 409 with the errors when it is invalid);
- ``GET /admin/reload/status``: whether the gateway runs from a file, and what the last
  reload (by the file watch, SIGHUP or the endpoint) did: ``{"result": "applied" |
  "refused", "at", "error"}``, or null before the first;
- ``POST /admin/clusters/{cluster}/instances/{id}/drain`` and ``.../enable``.

The dashboard (``/dashboard``) and ``POST /admin/cache/purge`` are served by
:mod:`._edge_admin` (see docs/gateway-policies.md).
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from . import _edge_admin
from ._app import Gateway
from ._redact import redact
from ._reload import Reloader

__all__ = ["AdminApp"]

_JSON = [(b"content-type", b"application/json")]


class AdminApp:
    """A small raw-ASGI app over one :class:`Gateway` (and its reloader, when it has one)."""

    def __init__(self, gateway: Gateway, reloader: Reloader | None = None) -> None:
        self.gateway = gateway
        self.reloader = reloader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if _edge_admin.handles(scope["path"]):
            await _edge_admin.serve(self, scope, receive, send)
            return
        status, body, headers = await self._dispatch(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        method, path = scope["method"], scope["path"]
        allowed = _OPEN.get(path)
        if allowed is not None:
            if method != allowed:
                return _not_allowed(allowed)
            return self._open(path)
        if not path.startswith("/admin/"):
            return _json(404, {"error": "not found"})
        if not self._authorized(scope):
            return _json(401, {"error": "admin token required"})
        parts = path[len("/admin/") :].split("/")
        allowed = _allowed(parts)
        if allowed is None:
            return _json(404, {"error": "not found"})
        if method != allowed:
            return _not_allowed(allowed)
        if not self.started:
            return _starting()
        return await self._admin(parts)

    def _open(self, path: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The answer of one of the :data:`_OPEN` paths, its method already checked."""
        if path == "/health":
            return _json(200, self.health())
        if path == "/ready":
            ready = self.started and not self.gateway.draining
            return _json(200 if ready else 503, {"ready": ready})
        return 200, self.gateway.metrics.render(), [(b"content-type", b"text/plain; version=0.0.4")]

    async def _admin(self, parts: list[str]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The answer of an ``/admin/...`` path :func:`_allowed` knows, its method already
        checked."""
        snapshot = self.gateway.snapshot
        if parts == ["routes"]:
            return _json(200, redact([r.model_dump(mode="json") for r in snapshot.router.routes]))
        if parts == ["clusters"]:
            return _json(200, redact([c.describe() for c in snapshot.clusters.values()]))
        if parts == ["config"]:
            # SecretStr fields dump as "**********", and so do the passwords of URLs
            # (edge.redis_url, rate_limit.storage_uri...): secrets never leave the process.
            return _json(200, redact(snapshot.config.model_dump(mode="json")))
        if parts == ["reload", "status"]:
            reloader = self.reloader
            if reloader is None:
                return _json(200, {"from_file": False, "path": None, "last": None})
            return _json(
                200, {"from_file": True, "path": str(reloader.path), "last": reloader.last}
            )
        if parts == ["reload"]:
            if self.reloader is None:
                return _json(409, {"error": "the gateway was not started from a file"})
            result = await self.reloader.reload()
            if result.is_failure:
                return _json(409, {"reloaded": False, "error": result.error})
            return _json(200, {"reloaded": True})
        # clusters/{cluster}/instances/{id}/drain|enable: the one other path _allowed knows.
        cluster = snapshot.clusters.get(parts[1])
        found = cluster is not None and await cluster.set_drained(parts[3], parts[4] == "drain")
        if cluster is None or not found:
            return _json(404, {"error": "no such cluster or instance"})
        return _json(200, redact(cluster.describe()))

    @property
    def started(self) -> bool:
        """True once the gateway has its first snapshot (built at its lifespan's start,
        which may wait on registries while this port already answers)."""
        return self.gateway._snapshot is not None

    def authorized(self, scope: Scope) -> bool:
        """True when ``scope`` carries the admin bearer token."""
        return self._authorized(scope)

    def _authorized(self, scope: Scope) -> bool:
        # The config in force (the snapshot's once started: a reload may change the token).
        token = self.gateway.config.admin.token
        expected = token.get_secret_value().encode() if token is not None else b""
        if not expected:  # `token: ""` opens nothing
            return False
        for name, value in scope["headers"]:
            if name == b"authorization":
                # RFC 9110 §11.4: the scheme (any case), one or more spaces, the token.
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    credentials.lstrip(b" "), expected
                )
        return False

    def health(self) -> dict[str, Any]:
        """The gateway's status and, per cluster, how many instances take traffic."""
        if not self.started:
            return {"status": "starting", "services": {}}
        services: dict[str, Any] = {}
        for name, cluster in self.gateway.snapshot.clusters.items():
            rows = cluster.describe()["instances"]
            usable = sum(1 for r in rows if r.get("state") == "up" and r["breaker"] != "open")
            services[name] = {
                "healthy": usable,
                "total": len(rows),
                "status": "up" if usable else "down",
            }
        status = "draining" if self.gateway.draining else "healthy"
        return {"status": status, "services": services}


# The paths open to all and the one method each answers.
_OPEN = {"/health": "GET", "/ready": "GET", "/metrics": "GET"}
# The fixed ``/admin/...`` endpoints behind the token and the one method each answers.
_ADMIN = {"routes": "GET", "clusters": "GET", "config": "GET", "reload": "POST"}


def _allowed(parts: list[str]) -> str | None:
    """The one method an ``/admin/...`` path answers (None: not an admin endpoint)."""
    if len(parts) == 1:
        return _ADMIN.get(parts[0])
    if parts == ["reload", "status"]:
        return "GET"
    if (
        len(parts) == 5
        and parts[0] == "clusters"
        and parts[2] == "instances"
        and parts[4] in ("drain", "enable")
    ):
        return "POST"
    return None


def _starting() -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The answer of an endpoint that needs the gateway's snapshot before it has one."""
    status, body, headers = _json(503, {"error": "the gateway is starting"})
    return status, body, [*headers, (b"retry-after", b"1")]


def _not_allowed(method: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    status, body, headers = _json(405, {"error": f"method not allowed; use {method}"})
    return status, body, [*headers, (b"allow", method.encode())]


def _json(status: int, payload: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, orjson.dumps(payload), list(_JSON)
