"""The gateway ASGI app: route, then proxy (HTTP or WebSocket), with one config snapshot.

A :class:`Snapshot` (router, clusters, compiled routes) is built whole from a validated
config and swapped in one assignment, so a request sees either the old or the new config,
never a mix; a request in flight, an SSE stream or a WebSocket keeps the snapshot it
started with until it ends (an HTTP request holds its :class:`~._retire.Lease`). Instance
state (breakers, ejections, drain flags) and pools carry over to the new snapshot for the
instances that remain (:meth:`Cluster.build`); what does not carry over is closed, the
probes at the swap and a pool after its last user (:mod:`._retire`).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from .._clock import Clock, get_clock
from .._result import FlextResult
from ..server._auth import Authenticator
from ..server._logging import JsonLogger, make_json_logger
from ..server._protocol import ON_CLIENT_GONE, Respond
from ..server._ratelimit import RateLimitDecision, RateLimitService, parse_limit
from ..server._ws_auth import expires_at, note_expiry
from ._auth import safe_header_value
from ._cluster import Cluster
from ._config import GatewayConfig
from ._edge import Edge
from ._headers import TrustedProxies
from ._metrics import UNMATCHED, GatewayMetrics
from ._path import (
    PLAIN_PATHS,
    normalize_path,
    remember_plain,
    routing_path,
    split_target,
    valid_host,
    with_host,
)
from ._proxy import CompiledRoute, Exchange, UpstreamCut, compiled_route, send_gateway_problem
from ._reasons import Reason
from ._retire import Holdings, Lease
from ._router import Router

__all__ = ["Gateway", "Snapshot", "create_gateway"]

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# The module's PRNG: seeded from os.urandom and reseeded in a forked child, so workers
# never repeat each other's IDs. Request IDs correlate log lines; they are not secrets.
_random_bits = random.getrandbits
# The scope key answer_now leaves its reading of a head under for __call__ (see _http).
_FRONT = "flext.gateway.front"


class _ClientGone:
    """Called by the server when a request's client leaves before its answer began:
    cancels the request's task (see :data:`~flext_api.server._protocol.ON_CLIENT_GONE`)."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        if self.task is not None and not self.task.done():
            self.fired = True
            self.task.cancel()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one config gives at run time; never changed after it is built (but for
    its lease's count of the requests using it)."""

    config: GatewayConfig
    router: Router
    clusters: dict[str, Cluster]
    routes: dict[str, CompiledRoute]
    trusted: TrustedProxies
    via: bytes
    #: The listener's head limit (read per request: a plain field, not the model's).
    max_header_bytes: int
    #: The requests using this snapshot now (what it holds is closed after the last).
    lease: Lease = field(default_factory=Lease, compare=False, repr=False)

    @classmethod
    async def build(
        cls, config: GatewayConfig, previous: Snapshot | None, clock: Clock
    ) -> Snapshot:
        """Build from ``config``, carrying instance state over from ``previous``.

        On failure, what was made for it (registries, probes, pools) is closed and what
        it took over from ``previous`` is left as it was.
        """
        old = previous.clusters if previous is not None else {}
        clusters: dict[str, Cluster] = {}
        try:
            for c in config.clusters:
                clusters[c.name] = await Cluster.build(c, old.get(c.name), clock)
            routes = {r.name: compiled_route(r, clusters[r.cluster]) for r in config.routes}
            return cls(
                config=config,
                router=Router(config.routes),
                clusters=clusters,
                routes=routes,
                trusted=TrustedProxies(config.trusted_proxies),
                via=config.via.encode(),
                max_header_bytes=config.listeners[0].max_header_bytes,
            )
        except BaseException:
            for name, cluster in clusters.items():
                await cluster.discard(old.get(name))  # logs its own close failures
            raise


class Gateway:
    """The ASGI app :func:`create_gateway` returns.

    Attributes:
        snapshot: the config in force (replaced whole by :meth:`apply`).
        metrics: the gateway's Prometheus registry.
        draining: True once shutdown began (new requests get a 503 ``draining``).
        holdings: the upstream pools the snapshots hold (see :mod:`._retire`).
    """

    def __init__(
        self, config: GatewayConfig, *, clock: Clock | None = None, access_log: Any = None
    ) -> None:
        self.clock = get_clock(clock)
        self.config = config
        self._snapshot: Snapshot | None = None
        self._starting = asyncio.Lock()
        self.metrics = GatewayMetrics()
        # Read at scrape time: no lock taken twice per request to keep a gauge current.
        self.metrics.in_flight.set_function(lambda: self.in_flight)
        self.edge = Edge(self.metrics.registry, self.clock)
        self.access_log = (
            access_log if access_log is not None else make_json_logger(name="flext_api.gateway")
        )
        self.draining = False
        self.in_flight = 0
        self.websockets: set[Any] = set()
        #: The pools the snapshots hold, closed when none holds them (see _retire).
        self.holdings = Holdings()
        self._ws_session: Any = None
        self._rate_limiters: dict[Any, RateLimitService] = {}
        self._authenticator: Authenticator | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- config -----------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The config in force (the gateway must have started: see :meth:`start`)."""
        if self._snapshot is None:
            raise RuntimeError("the gateway has not started (run its lifespan or start())")
        return self._snapshot

    async def start(self) -> Snapshot:
        """Build the first snapshot (registries, pools, probes); idempotent."""
        async with self._starting:
            if self._snapshot is None:
                snapshot = await Snapshot.build(self.config, None, self.clock)
                self.holdings.hold(snapshot)
                self._snapshot = snapshot
            return self._snapshot

    async def apply(self, config: GatewayConfig) -> FlextResult[Snapshot]:
        """Swap in ``config`` (already validated); in-flight work keeps the old snapshot.

        The old snapshot's registries the new one does not keep are closed at once (their
        probes stop), its pools the new one does not reuse once its last request ends.
        """
        async with self._starting:
            old = self.snapshot
            new = await Snapshot.build(config, old, self.clock)
            self.config = config
            self._snapshot = new
            await self.holdings.swap(old, new)
        self.metrics.reloads.labels("applied").inc()
        return FlextResult.ok(new)

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            from ._websocket import proxy_websocket, refuse_websocket

            snapshot = self._snapshot or await self.start()
            if not self.clean_path(scope):
                await refuse_websocket(self, scope, receive, send, Reason.AMBIGUOUS_PATH)
                return
            if not self.clean_host(scope):
                await refuse_websocket(self, scope, receive, send, Reason.BAD_HOST)
                return
            route = self.match(snapshot, scope)
            if route is not None and route.config.websocket and not self.draining:
                # The checks an HTTP request gets from _http (a handshake is one); a route
                # that takes no upgrade is refused by proxy_websocket before any of them.
                denied = await self._admit_handshake(snapshot, route, scope)
                if denied is not None:
                    reason, extra = denied
                    await refuse_websocket(self, scope, receive, send, reason, extra)
                    return
            request_id = self.request_id(scope)
            admitted = await self.edge.admit_websocket(
                snapshot, route, scope, receive, send, request_id
            )
            if admitted is not None:
                await proxy_websocket(self, admitted, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def answer_now(self, scope: Scope, respond: Respond) -> bool | Awaitable[bool]:
        """Answer ``scope`` without an ASGI call when it is a fresh cache hit; True if so.

        The gateway's httptools protocol offers each request that keeps its connection
        here before starting the app (``scope`` is uvicorn's, complete). When it is a
        ``GET`` with no body, on a route with no policy but ``cache: true``, and the
        memory cache holds a fresh single-variant response for the URL (see
        :meth:`Edge.hit_now`), the answer
        :meth:`__call__` would give is handed to ``respond`` (status, header lines,
        body), which sends it and returns True, or returns False when it cannot; the
        request is then counted, logged and recorded as :meth:`__call__` does. When the
        route's edge auth and rate limits guard its cache (no concurrency limit,
        transform or aggregate) and the cache holds such a response, the answer comes
        later: an awaitable is returned that runs the auth and the limits as the chain
        does (a Redis limit is awaited) and answers the same way (see
        :meth:`Edge.hit_later`), or comes to False with what it decided left for
        :meth:`__call__`. Anything else - a refusal to make, another route, a client
        directive, a stale entry, the Redis store - returns False and the request goes
        through :meth:`__call__`, which takes the reading of the head (:meth:`_front`)
        from here.
        """
        snapshot = self._snapshot
        raw = scope.get("raw_path")
        if (
            self.edge.cache is None  # no cache: nothing to answer from
            or snapshot is None
            or self.draining
            or scope["method"] != "GET"
            or raw not in PLAIN_PATHS
        ):
            return False
        started = time.perf_counter()
        front = self._front(snapshot, scope)
        route, request_id, refused, subject, body = front
        hit = later = None
        if (
            route is not None
            and refused is None
            and not subject
            and not body
            and not route.auth_gate
            and not route.rate_limited
        ):
            hit = self.edge.hit_now(snapshot, route, scope, request_id)
            if hit is None:
                status = self.edge.gated_now(snapshot, route, scope, request_id, respond)
                if status:
                    self._answered(scope, route, request_id, status, started)
                    return True
                if status == 0:  # decided (a refusal to make): the app goes on from there
                    scope[_FRONT] = (snapshot, front)
                    return False
                later = self.edge.hit_later(snapshot, route, scope, request_id, respond)
        if later is not None:
            assert route is not None
            return self._answer_later(later, snapshot, front, route, scope, started)
        if route is None or hit is None or not respond(*hit):
            scope[_FRONT] = (snapshot, front)  # __call__ takes it from there
            return False
        self._answered(scope, route, request_id, hit[0], started)
        return True

    async def _answer_later(
        self,
        answer: Awaitable[int],
        snapshot: Snapshot,
        front: tuple[CompiledRoute | None, bytes, Reason | None, bool, bool],
        route: CompiledRoute,
        scope: Scope,
        started: float,
    ) -> bool:
        """Await an answer of :meth:`Edge.hit_later`, an in-flight request meanwhile."""
        self.in_flight += 1
        self._idle.clear()
        try:
            status = await answer
        finally:
            self._leave()
        if not status:
            scope[_FRONT] = (snapshot, front)  # __call__ goes on from what was decided
            return False
        self._answered(scope, route, front[1], status, started)
        return True

    def _answered(
        self, scope: Scope, route: CompiledRoute, request_id: bytes, status: int, started: float
    ) -> None:
        """Count and log a request answered without the ASGI call, as :meth:`_http` does."""
        self.edge.count_hit(route.config.name, status, time.perf_counter() - started)
        self._log(scope, request_id, route, status, None, started, None)

    def request_id(self, scope: Scope) -> bytes:
        """The client's ``X-Request-ID`` when it is sane, else a fresh one.

        A fresh ID is 128 random bits in hex from the process's PRNG (seeded from the OS):
        unique for correlation, and no system call per request as ``uuid4`` makes. It is
        not a secret and nothing treats it as one.
        """
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _REQUEST_ID.match(value):
                return bytes(value)
        return b"%032x" % _random_bits(128)

    @staticmethod
    def clean_path(scope: Scope) -> bool:
        """Resolve ``scope``'s target in place, for routing and for the upstream alike:
        an absolute form's authority becomes the ``Host``, dot segments are resolved (see
        :mod:`._path`). False when the target is refused."""
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        if raw[:1] != b"/" and raw != b"*":  # an absolute form (h11 keeps it as is)
            split = split_target(raw)
            if split is None:
                return False
            authority, raw = split
            scope["headers"] = with_host(scope["headers"], authority)
            scope["raw_path"] = raw
            scope["path"] = routing_path(raw)
        normal = normalize_path(raw)
        if normal is None:
            return False
        if normal is not raw:
            scope["raw_path"] = normal
            scope["path"] = routing_path(normal)
        elif raw[:1] == b"/" and scope.get("raw_path") is raw:
            remember_plain(raw)
        return True

    @staticmethod
    def clean_host(scope: Scope) -> bool:
        """Whether ``scope``'s ``Host`` is one a route can be sure of: one line saying a
        host (:func:`valid_host`), or none on HTTP/1.0. :meth:`_front` applies the same
        rule in its pass over an HTTP request's head; a WebSocket handshake is checked
        here (after :meth:`clean_path`, which puts an absolute form's authority there)."""
        host: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"host":
                if host is not None:
                    return False  # a second Host line
                host = value
        if host is None:
            return scope.get("http_version") != "1.1"  # HTTP/1.1 requires one
        return valid_host(host)

    def match(self, snapshot: Snapshot, scope: Scope) -> CompiledRoute | None:
        """The compiled route for ``scope`` under ``snapshot``, or None."""
        host = next((v for n, v in scope["headers"] if n == b"host"), None)
        return self._route(snapshot, scope, host)

    def _front(
        self, snapshot: Snapshot, scope: Scope
    ) -> tuple[CompiledRoute | None, bytes, Reason | None, bool, bool]:
        """``scope``'s route, its request ID, the refusal its head earns (None: none),
        whether a client sent an identity header and whether the head announces a body.

        One pass over the head: the host (routing), a sane client request ID, the head's
        size and framing (refusals), and whether a client sent an identity header. The
        usual path is one seen before with nothing to resolve.
        """
        clean = scope.get("raw_path") in PLAIN_PATHS or self.clean_path(scope)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host: bytes | None = None
        request_id: bytes | None = None
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        te = cl = subject = hosts = coding = False
        for name, value in headers:
            size += len(name) + len(value) + 4
            if name == b"host":
                if host is None:
                    host = value
                else:
                    hosts = True  # a second Host line
            elif name == b"x-request-id":
                if request_id is None and _REQUEST_ID.match(value):
                    request_id = bytes(value)
            elif name == b"transfer-encoding":
                # Only one "chunked" is framed here: another coding ("gzip, chunked")
                # would reach the upstream as a plain chunked body (RFC 9112 §6.1: 501).
                coding = coding or te or value.strip().lower() != b"chunked"
                te = True
            elif name == b"content-length":
                cl = True
            elif name == b"x-authenticated-subject":
                subject = True
        if request_id is None:
            request_id = b"%032x" % _random_bits(128)
        if host is None:
            clean_host = scope.get("http_version") != "1.1"  # HTTP/1.1 requires one
        else:
            clean_host = not hosts and valid_host(host)
        route = self._route(snapshot, scope, host) if clean and clean_host else None
        refused = (
            Reason.AMBIGUOUS_PATH
            if not clean
            else Reason.BAD_HOST
            if not clean_host
            else Reason.HEADERS_TOO_LARGE
            if size > snapshot.max_header_bytes
            else Reason.AMBIGUOUS_REQUEST
            if te and cl
            else Reason.UNSUPPORTED_CODING
            if coding
            else None
        )
        return route, request_id, refused, subject, te or cl

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # This request's config, whatever reloads happen meanwhile: held (its pools stay
        # open) from now to the end, the awaits of auth and limits included.
        snapshot = self._snapshot or await self.start()
        lease = snapshot.lease
        lease.users += 1
        try:
            started = time.perf_counter()
            front = scope.pop(_FRONT, None)
            if front is not None and front[0] is snapshot:
                # answer_now read this head already, under this same snapshot.
                route, request_id, refused, subject, _ = front[1]
            else:
                route, request_id, refused, subject, _ = self._front(snapshot, scope)
            if route is None or self.draining or refused is not None:
                reason = (
                    refused
                    if refused is not None
                    else Reason.NO_ROUTE
                    if route is None
                    else Reason.DRAINING
                )
                await send_gateway_problem(scope, send, reason, request_id)
                self._log(scope, request_id, None, reason.status, reason, started, None)
                return
            if subject:
                # Only the gateway says who authenticated: a client-sent value never passes.
                scope["headers"] = [
                    h for h in scope["headers"] if h[0] != b"x-authenticated-subject"
                ]
            if route.auth_gate:  # a mapping is the edge's auth (see _edge.py)
                denied = await self._authenticate(snapshot, route, scope)
                if denied is not None:
                    reason, extra = denied
                    await send_gateway_problem(scope, send, reason, request_id, extra)
                    self._log(scope, request_id, route, reason.status, reason, started, None)
                    return
            limit_headers: list[tuple[bytes, bytes]] | None = None
            if route.rate_limited:
                decision = await self._core_limit(snapshot, route, scope)
                limit_headers = decision.header_lines()
                if not decision.allowed:
                    retry = (b"retry-after", b"%d" % decision.retry_after)
                    reason = Reason.RATE_LIMITED
                    await send_gateway_problem(
                        scope, send, reason, request_id, [*limit_headers, retry]
                    )
                    self._log(scope, request_id, route, reason.status, reason, started, None)
                    return
            cluster = snapshot.clusters[route.cluster]
            # Positional: keywords to a class call cost a dict per request.
            exchange = Exchange(
                route, cluster, snapshot.trusted, snapshot.via, request_id, limit_headers
            )
            self.in_flight += 1
            self._idle.clear()
            # A client that leaves before the answer began: the server calls this, the
            # request's work (an upstream's answer awaited, a cache fill it leads, a
            # composite's backends) is cancelled and its connections closed, as nginx
            # and Envoy do, instead of waiting up to per_try for an answer nobody reads.
            gone = _ClientGone(asyncio.current_task())
            scope[ON_CLIENT_GONE] = gone
            try:
                await self.edge.run(snapshot, route, scope, receive, send, exchange)
            except UpstreamCut:
                raise  # the server closes the connection: the client sees a cut stream
            except asyncio.CancelledError:
                if not gone.fired or gone.task is None:
                    raise
                gone.task.uncancel()  # ours: the request ends here, counted and logged
                exchange.result.reason = Reason.CLIENT_DISCONNECT
                exchange.result.status = Reason.CLIENT_DISCONNECT.status
            finally:
                scope[ON_CLIENT_GONE] = None
                self._leave()
                result = exchange.result
                outcome = result.reason
                self.metrics.observe(
                    route.name,
                    cluster.name,
                    result.status,
                    outcome.value if outcome is not None else "",
                    ttfb=result.ttfb,
                    upstream_time=result.upstream_time,
                    attempts=result.attempts,
                )
                self._log(scope, request_id, route, result.status, outcome, started, result)
        finally:
            lease.leave()

    def _route(self, snapshot: Snapshot, scope: Scope, host: bytes | None) -> CompiledRoute | None:
        """The compiled route for ``scope`` whose ``Host`` is ``host`` (None: no header)."""
        router = snapshot.router
        headers: dict[str, str] = {}
        if router.uses_headers:
            headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in scope["headers"]}
        found = router.match(
            scope.get("method", "GET"),
            host.decode("latin-1") if host is not None else "",
            scope["path"],
            headers,
            scope.get("query_string", b"").decode("latin-1") if router.uses_query else "",
        )
        return None if found is None else snapshot.routes[found.route.name]

    async def _authenticate(
        self, snapshot: Snapshot, route: CompiledRoute, scope: Scope
    ) -> tuple[Reason, list[tuple[bytes, bytes]]] | None:
        """Check the route's credentials; on success the subject is added to the scope's
        headers as ``x-authenticated-subject``; the refusal (reason, headers) otherwise."""
        config = snapshot.config.auth
        assert config is not None  # validated: auth routes need an auth section
        cached = self._authenticator
        if cached is None or cached.config != config:  # kept (with its JWKS cache) if equal
            cached = self._authenticator = Authenticator(config, logger=self.access_log)
        auth = cached
        token = api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].decode("latin-1").strip()
            elif name == b"x-api-key":
                api_key = value.decode("latin-1")
        try:
            principal = await auth.authenticate(token, api_key)
        except HTTPException as exc:
            challenge = (exc.headers or {}).get("WWW-Authenticate", "")
            return Reason.UNAUTHORIZED, [(b"www-authenticate", challenge.encode("latin-1"))]
        if not set(route.config.scopes) <= principal.scopes:
            return Reason.FORBIDDEN, []
        if scope["type"] == "websocket":  # the proxied socket is closed at the expiry
            note_expiry(scope, expires_at(principal, config.jwt_leeway))
        # The token's own text: control characters (a CR/LF would make the upstream
        # request unsendable, blamed on a healthy instance) and non-Latin-1 removed.
        subject = (b"x-authenticated-subject", safe_header_value(principal.subject))
        scope["headers"] = [*scope["headers"], subject]
        return None

    async def _admit_handshake(
        self, snapshot: Snapshot, route: CompiledRoute, scope: Scope
    ) -> tuple[Reason, list[tuple[bytes, bytes]]] | None:
        """A WebSocket handshake through what :meth:`_http` applies to a request before
        the edge: a client-sent ``X-Authenticated-Subject`` removed, then the route's
        ``auth: true`` (:meth:`_authenticate`) and ``rate_limit`` (the same counters).
        The refusal (reason, headers), or None with ``scope``'s headers ready to proxy."""
        scope["headers"] = [h for h in scope["headers"] if h[0] != b"x-authenticated-subject"]
        if route.auth_gate:
            denied = await self._authenticate(snapshot, route, scope)
            if denied is not None:
                return denied
        if route.rate_limited:
            decision = await self._core_limit(snapshot, route, scope)
            if not decision.allowed:
                retry = (b"retry-after", b"%d" % decision.retry_after)
                return Reason.RATE_LIMITED, [*decision.header_lines(), retry]
        return None

    def _core_limit(
        self, snapshot: Snapshot, route: CompiledRoute, scope: Scope
    ) -> Awaitable[RateLimitDecision]:
        """The route's ``rate_limit`` counted for this client (requests and handshakes
        share it). A plain function returning the awaitable: no frame of its own."""
        limiter = self._limits(snapshot)
        rule = route.config.rate_limit
        assert rule is not None  # rate_limited says so
        return limiter.hit(route.name, parse_limit(rule), limiter.client_key(scope))

    def _limits(self, snapshot: Snapshot) -> RateLimitService:
        """The rate-limit storage for ``snapshot``'s settings (kept while they are unchanged)."""
        config = snapshot.config.rate_limit
        if not config.trusted_proxies and snapshot.config.trusted_proxies:
            config = config.model_copy(update={"trusted_proxies": snapshot.config.trusted_proxies})
        service = self._rate_limiters.get(config)
        if service is None:
            service = RateLimitService(config, logger=self.access_log)
            self._rate_limiters[config] = service
        return service

    def _leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def _log(
        self,
        scope: Scope,
        request_id: bytes,
        route: CompiledRoute | None,
        status: int,
        reason: Reason | None,
        started: float,
        result: Any,
    ) -> None:
        if result is None:  # answered by the gateway before any upstream was tried
            self.metrics.observe(
                route.name if route is not None else UNMATCHED,
                route.cluster if route is not None else "",
                status,
                reason or "",
                ttfb=None,
                upstream_time=None,
                attempts=0,
            )
        client = scope.get("client")
        fields = {
            "request_id": request_id.decode("latin-1"),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "route": route.name if route is not None else UNMATCHED,
            "cluster": route.cluster if route is not None else None,
            "instance": getattr(result, "instance", None),
            "attempts": getattr(result, "attempts", 0),
            "status": status,
            "reason": reason.value if reason is not None else None,
            # Whole microseconds: round(x, 3) formats the float to decimal and back.
            "duration_ms": int((time.perf_counter() - started) * 1e6 + 0.5) / 1000,
            "client": client[0] if client else None,
        }
        log = self.access_log
        if type(log) is JsonLogger:
            log.emit("info", "request", fields)  # the same record, no keyword packing
        else:
            log.info("request", **fields)

    # -- shutdown ---------------------------------------------------------------------------
    async def drain(self, timeout: float) -> bool:
        """Refuse new requests, wait up to ``timeout`` for in-flight ones; True if all ended."""
        self.draining = True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def websocket_session(self) -> Any:
        """The aiohttp session WebSocket upstreams are dialled with (made on first use)."""
        if self._ws_session is None:
            import aiohttp

            self._ws_session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, auto_decompress=False
            )
        return self._ws_session

    async def close_websockets(self, code: int, reason: str) -> None:
        """Close every proxied WebSocket on both sides with ``code`` (1001 on shutdown)."""
        sessions = list(self.websockets)
        await asyncio.gather(*(s.close(code, reason) for s in sessions), return_exceptions=True)

    async def aclose(self) -> None:
        """Close the registries in force, every upstream pool left (current and retired,
        each once) and the WebSocket session; idempotent."""
        if self._ws_session is not None:
            session, self._ws_session = self._ws_session, None
            await session.close()
        clusters = self._snapshot.clusters.values() if self._snapshot is not None else ()
        # Retired registries were closed at their reload (aclose is idempotent anyway).
        for registry in {id(c.registry): c.registry for c in clusters}.values():
            await registry.aclose()
        for limiter in self._rate_limiters.values():
            await limiter.aclose()
        self._rate_limiters.clear()
        await self.holdings.aclose()
        await self.edge.aclose()


def create_gateway(config: GatewayConfig, *, clock: Clock | None = None) -> Gateway:
    """The gateway for ``config`` as an ASGI app (serve it with any ASGI server).

    >>> from flext_api.gateway import GatewayConfig, create_gateway
    >>> app = create_gateway(GatewayConfig.model_validate({
    ...     "clusters": [{"name": "orders", "instances": [{"url": "http://127.0.0.1:9001"}]}],
    ...     "routes": [{"name": "orders", "match": {"path_prefix": "/orders"},
    ...                 "cluster": "orders"}],
    ... }))
    >>> callable(app)
    True
    """
    return Gateway(config, clock=clock)
