"""The per-route filter chain of the edge policies, in front of the proxy exchange.

A request walks it once, in this order, and any step may answer instead of going on:

1. the identity headers (``X-Auth-*`` and forward-auth's copied headers) are dropped
   from the client's request, on every route;
2. **auth** (401 / 403 with ``WWW-Authenticate``), then the identity headers are set;
3. **rate limits** (429 with ``Retry-After``; ``RateLimit-*`` on every answer);
4. the **concurrency** limit (503 with ``Retry-After: 1`` when full);
5. request **transforms** (headers, query) and the response field filter;
6. the handler: **aggregate** for composite routes, else the **cache** in front of the
   exchange on ``cache: true`` routes, else the exchange.

The objects that hold state - counters, the cache store, JWKS keys - are kept across
reloads while their own config is unchanged, so a reload neither resets a limit nor
empties the cache. Prometheus series are labelled by route name and outcome only.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry, Counter
from starlette.types import Message, Receive, Scope, Send

from .._clock import Clock
from ..server._client_ip import ClientResolver
from ..server._protocol import Respond
from ..server._ratelimit import RateLimitDecision
from ..server._ws_auth import note_expiry
from ._aggregate import aggregate
from ._auth import Denied, EdgeAuth, Identity
from ._cache import SharedCache
from ._cache_hot import Prepared
from ._config import GatewayConfig, RouteConfig
from ._edge_checks import route_auth
from ._edge_config import RouteAuth, RoutePolicies
from ._proxy import UpstreamCut, send_gateway_problem
from ._ratelimit import CompiledLimit, EdgeLimiter, InFlight, StoreDown
from ._reasons import Reason
from ._retire import leased
from ._series import RouteSeries
from ._transform import CompiledTransform, Unfilterable

if TYPE_CHECKING:
    from ._app import Snapshot
    from ._proxy import CompiledRoute, Exchange, ExchangeResult

__all__ = ["ADMITTED", "Edge", "EdgeMetrics"]

#: The scope key under which :meth:`Edge.hit_later`'s coroutine leaves what it decided
#: (config, identity or refusal, rate-limit decisions) for the chain when it does not
#: answer itself.
ADMITTED = "flext.gateway.admitted"

_COUNTERS_MAX = 1024


class EdgeMetrics:
    """The edge's Prometheus series, on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.auth_rejections = Counter(
            "gateway_auth_rejections",
            "Requests refused by auth, by route and status (401, 403, 503).",
            ["route", "status"],
            registry=registry,
        )
        self.ratelimit_rejections = Counter(
            "gateway_ratelimit_rejections",
            "Requests refused with 429, by route and limit.",
            ["route", "limit"],
            registry=registry,
        )
        self.store_errors = Counter(
            "gateway_ratelimit_store_errors",
            "Rate-limit checks that could not reach Redis, by route and fail mode.",
            ["route", "mode"],
            registry=registry,
        )
        self.concurrency_rejections = Counter(
            "gateway_concurrency_rejections",
            "Requests refused because the route's in-flight limit was reached.",
            ["route"],
            registry=registry,
        )
        self.cache = Counter(
            "gateway_cache_requests",
            "Requests on cached routes by outcome (hit, stale, revalidated, miss, bypass).",
            ["route", "outcome"],
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class _RoutePolicy:
    auth: RouteAuth | None
    limits: tuple[CompiledLimit, ...]
    concurrency: int | None
    transform: CompiledTransform | None
    #: No policy and a plain exchange (no cache, no aggregate): the chain's fast path.
    plain: bool
    #: No policy and the cache in front of the exchange: a fresh hit is answered by
    #: :meth:`Edge.hit_now` as the chain would answer it.
    cache_only: bool
    #: Auth and/or rate limits, then the cache in front of the exchange (no concurrency
    #: limit, transform or aggregate): a fresh hit is answered by :meth:`Edge.hit_later`.
    cache_gated: bool
    #: A limit counts per the value of a header (``key: header``).
    header_keyed: bool


def _policy(route: RouteConfig, defaults: RoutePolicies) -> _RoutePolicy:
    auth = route_auth(route, defaults)
    rules = route.rate_limits if route.rate_limits is not None else defaults.rate_limits
    transform = route.transform if route.transform is not None else defaults.transform
    required = auth if auth is not None and auth.required else None
    concurrency = route.concurrency if route.concurrency is not None else defaults.concurrency
    bare = required is None and not rules and concurrency is None and transform is None
    gated = concurrency is None and transform is None and not bare
    return _RoutePolicy(
        auth=required,
        limits=tuple(CompiledLimit.build(route.name, i, r) for i, r in enumerate(rules or ())),
        header_keyed=any(rule.key == "header" for rule in rules or ()),
        concurrency=concurrency,
        transform=CompiledTransform(transform) if transform is not None else None,
        plain=bare and not route.cache and route.aggregate is None,
        cache_only=bare and route.cache and route.aggregate is None,
        cache_gated=gated and route.cache and route.aggregate is None,
    )


class _Compiled:
    """The edge objects of one config."""

    def __init__(self, config: GatewayConfig, edge: Edge) -> None:
        self.config = config
        self.policies = {r.name: _policy(r, config.edge.defaults) for r in config.routes}
        self.clients = ClientResolver(config.trusted_proxies)
        self.auth = edge.shared_auth(config)
        self.limiter = edge.shared_limiter(config)
        self.cache = edge.shared_cache(config) if any(r.cache for r in config.routes) else None
        if self.cache is not None:
            # A URL's purge or invalidation covers every route that may hold it (the
            # names of earlier configs too: their entries live on in the store).
            cached = (r.name for r in config.routes if r.cache)
            self.cache.routes = tuple(dict.fromkeys((*self.cache.routes, *cached)))
        self.strip = self.auth.upstream_names()


class Edge:
    """The edge policies of one gateway (see module docstring)."""

    def __init__(self, registry: CollectorRegistry, clock: Clock) -> None:
        self.clock = clock
        self.metrics = EdgeMetrics(registry)
        self.series = RouteSeries()
        self.in_flight = InFlight()
        self.rejections: dict[str, int] = {}
        self._compiled: dict[int, _Compiled] = {}
        self._auth: EdgeAuth | None = None
        self._limiter: EdgeLimiter | None = None
        #: The shared cache in use, if a route of some config has ``cache: true``.
        self.cache: SharedCache | None = None
        self._retired: list[Any] = []
        self._cache_counters: dict[tuple[str, str], Any] = {}

    # -- stateful parts, kept across reloads ------------------------------------------------
    def shared_auth(self, config: GatewayConfig) -> EdgeAuth:
        """The auth sources of ``config`` (the current ones when unchanged: JWKS cache kept)."""
        current = self._auth
        if current is None or current.config != config.edge.auth:
            if current is not None:
                self._retired.append(current)
            current = self._auth = EdgeAuth(config.edge.auth, clock=self.clock)
        return current

    def shared_limiter(self, config: GatewayConfig) -> EdgeLimiter:
        """The counters (kept while ``edge.redis_url`` is unchanged)."""
        current = self._limiter
        if current is None or current.redis_url != config.edge.redis_url:
            if current is not None:
                self._retired.append(current)
            current = self._limiter = EdgeLimiter(config.edge.redis_url)
        return current

    def shared_cache(self, config: GatewayConfig) -> SharedCache:
        """The cache store (kept while its config and ``edge.redis_url`` are unchanged)."""
        current = self.cache
        redis_url = config.edge.redis_url
        if current is None or current.config != config.edge.cache or current.redis_url != redis_url:
            if current is not None:
                self._retired.append(current)
            current = SharedCache(config.edge.cache, redis_url=redis_url, clock=self.clock)
            self.cache = current
        return current

    def compiled(self, config: GatewayConfig) -> _Compiled:
        """The edge objects of ``config`` (built once per config)."""
        found = self._compiled.get(id(config))
        if found is None or found.config is not config:
            found = self._compiled[id(config)] = _Compiled(config, self)
            while len(self._compiled) > 4:  # in-flight requests of old configs keep theirs
                del self._compiled[next(iter(self._compiled))]
        return found

    # -- the chain ---------------------------------------------------------------------------
    def hit_now(
        self, snapshot: Snapshot, route: CompiledRoute, scope: Scope, request_id: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer (status, header lines, body) the chain would give ``scope``, a
        ``GET`` without a body, when its route has no policy but the cache and the cache
        holds a fresh response for it in process; None otherwise. Nothing is counted:
        :meth:`count_hit` does once the answer is sent."""
        compiled = self.compiled(snapshot.config)
        cache = compiled.cache
        if cache is None or not compiled.policies[route.config.name].cache_only:
            return None
        fresh = cache.fresh_hit(scope, route.config.name)
        if fresh is None:
            return None
        _, hot, age = fresh
        return hot.stored.status, cache.hit_headers(hot, age, request_id), hot.stored.body

    def hit_later(
        self,
        snapshot: Snapshot,
        route: CompiledRoute,
        scope: Scope,
        request_id: bytes,
        respond: Respond,
    ) -> Coroutine[Any, Any, int] | None:
        """For a ``GET`` without a body on a route whose auth and rate limits guard the
        cache (``cache_gated``), when the cache holds a fresh response for it in process:
        the chain's steps up to the cache as a coroutine that answers through ``respond``
        (:meth:`_gated_hit`); None otherwise."""
        compiled = self.compiled(snapshot.config)
        policy = compiled.policies[route.config.name]
        cache = compiled.cache
        if cache is None or not policy.cache_gated:
            return None
        fresh = cache.fresh_hit(scope, route.config.name)
        if fresh is None:
            return None
        return self._gated_hit(
            compiled, policy, route.config.name, scope, request_id, respond, *fresh[:2]
        )

    async def _gated_hit(
        self,
        compiled: _Compiled,
        policy: _RoutePolicy,
        name: str,
        scope: Scope,
        request_id: bytes,
        respond: Respond,
        key: str,
        hot: Prepared,
    ) -> int:
        """Auth and limits as :meth:`_chain` runs them, then the hit on ``hot`` (the
        cache's fresh entry under ``key``): its status once answered. Anything else - a
        refusal, an entry no longer fresh or no longer the cache's, an answer that could
        not be sent - returns 0 with what was decided in ``scope`` (:data:`ADMITTED`):
        the chain then goes on from there, and nothing is counted twice."""
        guarded, identity = await self._identify(compiled, policy, scope)
        if isinstance(identity, Denied):
            scope[ADMITTED] = (compiled.config, identity, None)
            return 0
        decisions = await self._decide(compiled, policy, guarded, identity)
        return self._answer_hit(
            compiled, policy, name, scope, request_id, respond, key, hot, identity, decisions
        )

    def gated_now(
        self,
        snapshot: Snapshot,
        route: CompiledRoute,
        scope: Scope,
        request_id: bytes,
        respond: Respond,
    ) -> int | None:
        """:meth:`hit_later`'s answer given at once, when none of its steps has to wait:
        the route's auth is a bearer token this gateway verified already (or there is no
        auth) and each limit counts in memory or on a slot this gateway leased. The
        status once answered; 0 when decided but not answered here (a refusal, an entry
        no longer fresh: what was decided is left in ``scope`` for the chain, as
        :meth:`_gated_hit` leaves it); None when something would have to wait, before
        anything is counted (then :meth:`hit_later`)."""
        compiled = self.compiled(snapshot.config)
        name = route.config.name
        policy = compiled.policies[name]
        cache = compiled.cache
        if cache is None or not policy.cache_gated:
            return None
        identity: Identity | Denied | None = None
        if policy.auth is not None:
            identity = compiled.auth.authenticate_now(scope, policy.auth)
            if identity is None:
                return None
        fresh = cache.fresh_hit(scope, name)
        if fresh is None:
            return None
        if isinstance(identity, Denied):
            scope[ADMITTED] = (compiled.config, identity, None)
            return 0
        limits = policy.limits
        # A header limit reads the headers the chain's copy of the scope has (the client's
        # identity headers dropped, the gateway's added); the others read the client's
        # address, which that copy does not change.
        counted = self._guarded(compiled, scope, identity) if policy.header_keyed else scope
        limiter = compiled.limiter
        keys = [limit.key(counted, identity, compiled.clients) for limit in limits]
        for limit, key in zip(limits, keys, strict=True):
            if not limiter.ready(limit, key):
                return None
        decisions: list[RateLimitDecision | StoreDown] = []
        for limit, key in zip(limits, keys, strict=True):
            decision = limiter.hit_now(limit, key)
            decisions.append(decision)
            if _refuses(decision):
                break
        entry, hot = fresh[:2]
        return self._answer_hit(
            compiled, policy, name, scope, request_id, respond, entry, hot, identity, decisions
        )

    def _answer_hit(
        self,
        compiled: _Compiled,
        policy: _RoutePolicy,
        name: str,
        scope: Scope,
        request_id: bytes,
        respond: Respond,
        key: str,
        hot: Prepared,
        identity: Identity | None,
        decisions: list[RateLimitDecision | StoreDown],
    ) -> int:
        """The hit on ``hot`` once auth and limits admitted the request: its status once
        answered, else 0 with what was decided left in ``scope`` (see :meth:`_gated_hit`)."""
        cache = compiled.cache
        assert cache is not None  # cache_gated says so
        age = None if _refusal(decisions) else cache.still_fresh(key, hot)
        if age is not None:
            lines = cache.hit_headers(hot, age, request_id)
            tightest = _tightest(decisions)
            if tightest is not None:
                lines += tightest.header_lines()
            if respond(hot.stored.status, lines, hot.stored.body):
                self._count_limits(name, policy, decisions)
                return hot.stored.status
        scope[ADMITTED] = (compiled.config, identity, decisions)
        return 0

    def count_hit(self, route: str, status: int, seconds: float) -> None:
        """Count an answer of :meth:`hit_now` as :meth:`run` counts a cache hit."""
        self.series.record(route, self.clock.time(), status, seconds)
        self._cache_counter(route, "hit").inc()
        if self.cache is not None:
            self.cache.stats.add("hit")

    async def run(
        self,
        snapshot: Snapshot,
        route: CompiledRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
    ) -> None:
        """Apply the route's policies, then answer through the handler."""
        started = time.perf_counter()
        name = route.config.name
        result = exchange.result
        compiled = self.compiled(snapshot.config)
        if compiled.policies[name].plain:
            # Nothing to add to the answer and the exchange sets the status itself: no send
            # wrapper, and the scope is copied only when a client sent an identity header.
            strip = compiled.strip
            if strip and not strip.isdisjoint(dict(scope["headers"])):
                headers = [(n, v) for n, v in scope["headers"] if n not in strip]
                scope = {**scope, "headers": headers}
            try:
                await exchange.run(scope, receive, send)
            finally:
                self.series.record(
                    name, self.clock.time(), result.status, time.perf_counter() - started
                )
            return
        # The RateLimit-* lines of the tightest limit, added to whatever answer goes out.
        extra: list[tuple[bytes, bytes]] = []

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                result.status = message["status"]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self._chain(snapshot, route, scope, receive, observed, exchange, extra)
        finally:
            self.series.record(
                name, self.clock.time(), result.status, time.perf_counter() - started
            )

    async def _chain(
        self,
        snapshot: Snapshot,
        route: CompiledRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        compiled = self.compiled(snapshot.config)
        name = route.config.name
        policy = compiled.policies[name]
        request_id = exchange.request_id
        result = exchange.result
        # What hit_later's coroutine decided already, under this same config.
        admitted = scope.pop(ADMITTED, None)
        if admitted is not None and admitted[0] is not snapshot.config:
            admitted = None  # a reload came in between: decided again under the new one
        known = admitted[1] if admitted is not None else None
        scope, identity = await self._identify(compiled, policy, scope, known)
        scope["flext.request_id"] = request_id.decode("latin-1")
        if isinstance(identity, Denied):
            self.metrics.auth_rejections.labels(name, str(identity.status)).inc()
            self._count_rejection(name)
            extra = [(b"www-authenticate", c.encode()) for c in identity.challenges]
            reason = _DENIED[identity.status]
            await _problem(scope, send, reason, request_id, extra, result, identity.detail)
            return
        decided = admitted[2] if admitted is not None else None
        decision = await self._limits(
            compiled, policy, name, scope, identity, send, request_id, result, decided
        )
        if decision is False:
            return
        if isinstance(decision, RateLimitDecision):
            extra += decision.header_lines()
        if policy.concurrency is not None and not self.in_flight.enter(name, policy.concurrency):
            self.metrics.concurrency_rejections.labels(name).inc()
            self._count_rejection(name)
            reason = Reason.CONCURRENCY_LIMITED
            await _problem(scope, send, reason, request_id, [(b"retry-after", b"1")], result)
            return
        try:
            await self._handle(compiled, snapshot, route, policy, scope, receive, send, exchange)
        finally:
            if policy.concurrency is not None:
                self.in_flight.leave(name)

    async def _limits(
        self,
        compiled: _Compiled,
        policy: _RoutePolicy,
        name: str,
        scope: Scope,
        identity: Identity | None,
        send: Send,
        request_id: bytes,
        result: ExchangeResult,
        decided: list[RateLimitDecision | StoreDown] | None = None,
    ) -> RateLimitDecision | Literal[False] | None:
        """The tightest decision to report, None without limits, False once refused.

        ``decided``: the decisions :meth:`_gated_hit` took already (not counted yet).
        """
        decisions = decided
        if decisions is None:
            decisions = await self._decide(compiled, policy, scope, identity)
        self._count_limits(name, policy, decisions)
        last = _refusal(decisions)
        if isinstance(last, StoreDown):
            reason = Reason.RATE_LIMIT_UNAVAILABLE
            await _problem(scope, send, reason, request_id, [(b"retry-after", b"1")], result)
            return False
        if last is not None:
            extra = [*last.header_lines(), (b"retry-after", b"%d" % last.retry_after)]
            await _problem(scope, send, Reason.RATE_LIMITED, request_id, extra, result)
            return False
        return _tightest(decisions)

    @staticmethod
    async def _identify(
        compiled: _Compiled,
        policy: _RoutePolicy,
        scope: Scope,
        known: Identity | Denied | None = None,
    ) -> tuple[Scope, Identity | Denied | None]:
        """A copy of ``scope`` without the identity headers a client sent and, on a route
        with auth, who sent it (whose identity headers the copy then carries) or why it is
        refused; ``known``: what :meth:`_gated_hit` found already."""
        headers = [(n, v) for n, v in scope["headers"] if n not in compiled.strip]
        scope = {**scope, "headers": headers}
        if policy.auth is None:
            return scope, None
        found = known if known is not None else await compiled.auth.authenticate(scope, policy.auth)
        if not isinstance(found, Denied):
            scope["headers"] = headers + compiled.auth.identity_headers(found)
        return scope, found

    @staticmethod
    def _guarded(compiled: _Compiled, scope: Scope, identity: Identity | None) -> Scope:
        """The copy of ``scope`` :meth:`_identify` makes for ``identity`` (known already)."""
        headers = [(n, v) for n, v in scope["headers"] if n not in compiled.strip]
        if identity is not None:
            headers += compiled.auth.identity_headers(identity)
        return {**scope, "headers": headers}

    @staticmethod
    async def _decide(
        compiled: _Compiled, policy: _RoutePolicy, scope: Scope, identity: Identity | None
    ) -> list[RateLimitDecision | StoreDown]:
        """Count the request against the route's limits in order, up to the first that
        refuses it (a refusal, or Redis unreachable under ``closed``)."""
        decisions: list[RateLimitDecision | StoreDown] = []
        for limit in policy.limits:
            key = limit.key(scope, identity, compiled.clients)
            decision = await compiled.limiter.hit(limit, key)
            decisions.append(decision)
            if _refuses(decision):
                break
        return decisions

    def _count_limits(
        self, name: str, policy: _RoutePolicy, decisions: list[RateLimitDecision | StoreDown]
    ) -> None:
        """The metrics of ``decisions``: store errors by fail mode, and a refusal."""
        for limit, decision in zip(policy.limits, decisions, strict=False):
            if isinstance(decision, StoreDown):
                mode = "closed" if decision.closed else "open"
                self.metrics.store_errors.labels(name, mode).inc()
            elif not decision.allowed:
                self.metrics.ratelimit_rejections.labels(name, limit.bucket).inc()
                self._count_rejection(name)

    async def _handle(
        self,
        compiled: _Compiled,
        snapshot: Snapshot,
        route: CompiledRoute,
        policy: _RoutePolicy,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
    ) -> None:
        if policy.transform is not None:
            scope = policy.transform.request(scope)
            if policy.transform.filters_response:
                filtering = policy.transform.response_send(send, head=scope["method"] == "HEAD")
                try:
                    await self._answer(
                        compiled, snapshot, route, scope, receive, filtering, exchange
                    )
                except UpstreamCut:
                    if not filtering.holding:
                        raise  # the client has the start: its stream is cut
                    # Nothing reached the client (the filter held the start for the whole
                    # body): the gateway's 502, as for a cut before the head.
                    reason = Reason.UPSTREAM_CUT
                    await _problem(scope, send, reason, exchange.request_id, [], exchange.result)
                except Unfilterable as exc:
                    # Raised before anything of the response was sent (the filter fails
                    # closed): the body may hold the fields the route keeps from clients.
                    reason = Reason.UNFILTERABLE_RESPONSE
                    await _problem(
                        scope, send, reason, exchange.request_id, [], exchange.result, str(exc)
                    )
                return
        await self._answer(compiled, snapshot, route, scope, receive, send, exchange)

    async def _answer(
        self,
        compiled: _Compiled,
        snapshot: Snapshot,
        route: CompiledRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
    ) -> None:
        """The route's handler: an aggregate, the cache in front of the exchange, or the
        exchange."""
        config = route.config
        if config.aggregate is not None:
            if scope["method"] not in ("GET", "HEAD"):  # its backends are GETs
                result = exchange.result
                result.reason, result.status = Reason.METHOD_NOT_ALLOWED, 405
                await send_gateway_problem(
                    scope, send, Reason.METHOD_NOT_ALLOWED, exchange.request_id,
                    [(b"allow", b"GET, HEAD")],
                )  # fmt: skip
                return
            await aggregate(
                config.aggregate, snapshot.clusters, scope, send, exchange.request_id,
                compiled.strip,
            )  # fmt: skip
            return
        if config.cache and compiled.cache is not None:
            # A revalidation in the background calls it after this request ended: it
            # holds the snapshot (and so its pool) itself.
            upstream = leased(exchange.run, snapshot.lease)
            outcome = await compiled.cache.handle(scope, receive, send, upstream, config.name)
            self._cache_counter(config.name, outcome).inc()
            return
        await exchange.run(scope, receive, send)

    async def admit_websocket(
        self, snapshot: Snapshot, route: CompiledRoute | None, scope: Scope, receive: Receive,
        send: Send, request_id: bytes = b"-",
    ) -> Scope | None:  # fmt: skip
        """The WebSocket handshake through the route's auth and limits.

        Returns the scope to proxy (identity headers dropped, then set when auth passed),
        or None once the handshake was refused (401/403/429/503 as the gateway's problem
        answer when the server supports it, else a close with 1008 before accepting).
        """
        if route is None:
            return scope
        compiled = self.compiled(snapshot.config)
        name = route.config.name
        policy = compiled.policies[name]
        scope, found = await self._identify(compiled, policy, scope)
        identity: Identity | None = None
        refused: tuple[Reason, list[tuple[bytes, bytes]], str | None] | None = None
        if isinstance(found, Denied):
            self.metrics.auth_rejections.labels(name, str(found.status)).inc()
            extra = [(b"www-authenticate", c.encode()) for c in found.challenges]
            refused = (_DENIED[found.status], extra, found.detail)
        else:
            identity = found
        decisions = await self._decide(compiled, policy, scope, identity) if refused is None else []
        self._count_limits(name, policy, decisions)  # a 429 is counted as a rejection there
        last = _refusal(decisions)
        if isinstance(last, StoreDown):
            refused = (Reason.RATE_LIMIT_UNAVAILABLE, [(b"retry-after", b"1")], None)
        elif last is not None:
            refused = (Reason.RATE_LIMITED, [(b"retry-after", b"%d" % last.retry_after)], None)
        if refused is None:
            # The proxied socket is closed when the credentials expire.
            note_expiry(scope, identity.expires_at if identity is not None else None)
            return scope
        if not isinstance(last, RateLimitDecision):
            self._count_rejection(name)
        message = await receive()
        if message["type"] == "websocket.connect":
            if "websocket.http.response" in scope.get("extensions", {}):

                async def as_http(message: Message) -> None:
                    await send({**message, "type": "websocket." + message["type"]})

                reason, extra, detail = refused
                await _problem(scope, as_http, reason, request_id, extra, None, detail)
            else:
                await send({"type": "websocket.close", "code": 1008})
        return None

    def _cache_counter(self, route: str, outcome: str) -> Any:
        """The ``gateway_cache_requests`` child of ``route`` and ``outcome``, looked up once."""
        key = (route, outcome)
        child = self._cache_counters.get(key)
        if child is None:
            if len(self._cache_counters) >= _COUNTERS_MAX:  # route names of many reloads
                self._cache_counters.clear()
            child = self._cache_counters[key] = self.metrics.cache.labels(route, outcome)
        return child

    def _count_rejection(self, route: str) -> None:
        self.rejections[route] = self.rejections.get(route, 0) + 1

    async def aclose(self) -> None:
        """Close every store, pool and session the edge opened."""
        parts = [*self._retired, self._auth, self._limiter, self.cache]
        self._retired.clear()
        for part in parts:
            if part is not None:
                await part.aclose()


def _refuses(decision: RateLimitDecision | StoreDown) -> bool:
    return decision.closed if isinstance(decision, StoreDown) else not decision.allowed


def _refusal(
    decisions: list[RateLimitDecision | StoreDown],
) -> RateLimitDecision | StoreDown | None:
    """The decision that refused the request (the last one taken), None if none did."""
    return decisions[-1] if decisions and _refuses(decisions[-1]) else None


def _tightest(decisions: list[RateLimitDecision | StoreDown]) -> RateLimitDecision | None:
    """The passing decision with the fewest requests left (the first of equals)."""
    tightest: RateLimitDecision | None = None
    for decision in decisions:
        if isinstance(decision, RateLimitDecision) and (
            tightest is None or decision.remaining < tightest.remaining
        ):
            tightest = decision
    return tightest


# An auth refusal's reason by its status (a Denied is a 401, a 403 or a 503).
_DENIED = {
    401: Reason.UNAUTHORIZED,
    403: Reason.FORBIDDEN,
    503: Reason.AUTH_UNAVAILABLE,
}


async def _problem(
    scope: Scope,
    send: Send,
    reason: Reason,
    request_id: bytes,
    headers: list[tuple[bytes, bytes]],
    result: ExchangeResult | None,
    detail: str | None = None,
) -> None:
    """The gateway's problem answer for an edge refusal, its reason in ``result`` (the
    access log's and the metrics'), as :meth:`Exchange._fail` records the core's."""
    if result is not None:
        result.reason = reason
        result.status = reason.status
    await send_gateway_problem(scope, send, reason, request_id, headers, detail)
