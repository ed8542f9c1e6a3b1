"""The client's discovery stage: ``service://NAME/path`` -> one instance, per attempt.

``FlextApiClient(registry=...)`` places this stage just inside retry and outside the
circuit breaker, so every attempt picks an instance again (a retry avoids the instances
already tried while another exists) and the breaker, rate limiter and bulkhead below it
key on the instance's ``host:port``: a dead instance opens its own breaker, not the
service's. When an instance's breaker is open the stage moves on to another instance at
once (an open breaker is not a failure of the call). Each call's outcome feeds passive
outlier detection and the balancer (in-flight counts, latency).

The stage is a plain middleware ``(request, call_next)``: this layer never imports the
client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any, TypeAlias

from .._clock import Clock, get_clock
from .._errors import NOT_SENT, ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from .._result import FlextResult
from ._cluster import Cluster
from ._instance import ServiceInstance
from ._registry import ServiceRegistry

__all__ = ["SERVICE_SCHEME", "DiscoveryStage", "hash_on", "split_service_url"]

SERVICE_SCHEME = "service://"
_CallNext: TypeAlias = Callable[[HttpRequest], Awaitable[FlextResult[HttpResponse]]]
KeyFunc: TypeAlias = Callable[[HttpRequest], str | None]


_NO_HOSTS: frozenset[str] = frozenset()
_splits: dict[str, tuple[str, str]] = {}
_hosts: dict[str, str] = {}


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    # Services call the same URLs again: keep what was parsed, within a bound.
    if len(cache) >= 4096:
        cache.clear()
    cache[key] = value


def split_service_url(url: str) -> tuple[str, str]:
    """``service://orders/a?b`` -> ``("orders", "/a?b")``; ValueError for another URL.

    Splits are remembered, and the stage takes a remembered URL for a service URL.
    """
    known = _splits.get(url)
    if known is not None:
        return known
    if not url.startswith(SERVICE_SCHEME):
        raise ValueError(f"not a {SERVICE_SCHEME} URL: {url!r}")
    rest = url[len(SERVICE_SCHEME) :]
    cut = len(rest)
    for sep in "/?#":
        at = rest.find(sep)
        if 0 <= at < cut:
            cut = at
    parts = rest[:cut], rest[cut:]
    _remember(_splits, url, parts)
    return parts


def hash_on(spec: str) -> KeyFunc:
    """A consistent-hashing key from the request: ``"header:X-User"`` or ``"cookie:sid"``.

    Raises ``FlextApiError`` (CONFIG_ERROR) for another form.
    """
    kind, _, field = spec.partition(":")
    if not field or kind not in ("header", "cookie"):
        raise FlextApiError.from_code(
            ErrorCode.CONFIG_ERROR, f"hash_on must be 'header:NAME' or 'cookie:NAME', got {spec!r}"
        )
    if kind == "header":

        def by_header(request: HttpRequest) -> str | None:
            return request.headers.get(field)

        return by_header

    def by_cookie(request: HttpRequest) -> str | None:
        raw = request.headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(field)
        return None if morsel is None else morsel.value

    return by_cookie


class DiscoveryStage:
    """Resolves ``service://`` URLs through ``registry`` on every attempt.

    Args:
        registry: where services are looked up.
        hash_key: maps a request to its consistent-hashing key (see :func:`hash_on`);
            ``request.extensions["hash_key"]`` overrides it per request.
        clock: measures call latency for the balancer.
    """

    name = "discovery"

    def __init__(
        self,
        registry: ServiceRegistry,
        *,
        hash_key: KeyFunc | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.registry = registry
        # The registry's clusters by name, read once per attempt without a method call
        # (the registry keeps this one dict for its whole life).
        self._clusters = registry._clusters
        self._hash_key = hash_key
        self._clock = get_clock(clock)
        # Registry and client on one clock: one reading serves both per attempt.
        self._one_clock = registry.monotonic == self._clock.monotonic

    def _target(self, request: HttpRequest) -> tuple[str, str, set[str] | None, str | None] | None:
        """The service, its path, the hosts this call already tried and the hashing key;
        None for a URL that is not ``service://`` (and never was in this call)."""
        ext = request.extensions
        url = request.url
        if url.startswith(SERVICE_SCHEME):
            ext["service_url"] = url
        else:
            original: str | None = ext.get("service_url")
            if original is None:
                return None
            url = original
        parts = _splits.get(url)
        name, path = split_service_url(url) if parts is None else parts
        # Hosts this call already tried: none on a first attempt, which then needs no set
        # (the id it picks is kept in "service_instance"); a retry or a refused breaker
        # makes one.
        tried: set[str] | None = ext.get("service_tried")
        if tried is None:
            previous = ext.get("service_instance")
            if previous is not None:
                tried = ext["service_tried"] = {previous}
        key = ext.get("hash_key")
        if key is None and self._hash_key is not None:
            key = self._hash_key(request)
        return name, path, tried, key

    # The stage in three synchronous steps (the client runs them in the frame it shares
    # with the stages around it, see client/_plugin.py SplitPlugin): enter() picks the
    # first attempt's instance on the fast path, leave() records the outcome, and the
    # loop of __call__ (a backend to wait for, a breaker that refused) takes over the
    # rest. As a plain middleware, __call__ runs the loop from the start.
    def enter(self, request: HttpRequest) -> Any:
        """Pick an instance and point the request at it: a token for :meth:`leave`.

        None for a URL that is not ``service://``; the stage itself when the pick must
        wait (the service's first lookup, or no instance at hand): :meth:`take_over`.
        """
        ext = request.extensions
        url = request.url
        parts = _splits.get(url)
        if parts is None or ext:
            # Not the first attempt at a service URL called before: the general path.
            # (The else branch is _target's answer for that case, without the call.)
            target = self._target(request)
            if target is None:
                return None
            name, path, tried, key = target
        else:
            ext["service_url"] = url
            name, path = parts
            tried = None
            key = None if self._hash_key is None else self._hash_key(request)
        cluster = self._clusters.get(name)
        if cluster is None:
            return self
        at = self.registry.monotonic()
        instance = cluster.pick(at, key, tried or _NO_HOSTS)
        if instance is None:
            return self
        ident = instance.id
        if tried is not None:
            tried.add(ident)
        ext["service_instance"] = ident
        started = self._point(request, cluster, instance, path, at)
        return cluster, instance, started

    def leave(
        self,
        request: HttpRequest,
        token: Any,
        result: FlextResult[HttpResponse],
        call_next: _CallNext,
    ) -> FlextResult[HttpResponse] | Awaitable[FlextResult[HttpResponse]]:
        """Record the attempt's outcome; a refusal of its breaker moves on (awaitable)."""
        if token is None:
            return result
        cluster, instance, started = token
        error = result._error
        if error is None:
            status = result._value.status_code
            # A plain success on a balancer that counts nothing, to a host with nothing
            # to reset: no clock read, no bookkeeping.
            if (
                status >= 500
                or cluster.tracks_calls
                or not cluster.success_changes_nothing(instance.id)
            ):
                self._record(cluster, instance, started, status, None)
            return result
        if error.code is ErrorCode.CIRCUIT_OPEN:
            # A refusal of the instance's own breaker is no outcome of the call.
            self._record(cluster, instance, started, None, None)
            ext = request.extensions
            if ext.get("service_tried") is None:
                ext["service_tried"] = {instance.id}
            return self(request, call_next, result)  # try another instance at once
        response = error.response
        if response is None:
            self._record(cluster, instance, started, None, error.code)
        else:
            self._record(cluster, instance, started, response.status_code, None)
        return result

    def abandon(self, token: Any) -> None:
        """The attempt raised (cancelled): release the instance's in-flight count."""
        if token is not None:
            cluster, instance, started = token
            self._record(cluster, instance, started, None, None)

    def take_over(
        self, request: HttpRequest, call_next: _CallNext
    ) -> Awaitable[FlextResult[HttpResponse]]:
        """The whole call, when :meth:`enter` could not pick at once."""
        return self(request, call_next)

    def _point(
        self,
        request: HttpRequest,
        cluster: Cluster,
        instance: ServiceInstance,
        path: str,
        at: float,
    ) -> float:
        """Send ``request`` to ``instance``; return the call's start (after a pick at ``at``)."""
        base = instance.url
        request.url = base + path
        # The per-host stages below key on the instance: hand them its host.
        host = _hosts.get(base)
        if host is None:
            host = instance.host
            _remember(_hosts, base, host)
        request.host_hint(host)
        if cluster.tracks_calls:
            cluster.balancer.on_start(instance)
        # One reading of the shared clock (the usual case) serves pick and start.
        return at if self._one_clock else self._clock.monotonic()

    def _record(
        self,
        cluster: Cluster,
        instance: ServiceInstance,
        started: float,
        status: int | None,
        code: ErrorCode | None,
    ) -> None:
        """Feed one call's outcome (none: cancelled or refused) to its cluster."""
        ended = self._clock.monotonic()
        transition = cluster.record_call(
            instance,
            status=status,
            error=code,
            latency=ended - started,
            now=ended if self._one_clock else self.registry.monotonic(),
        )
        if transition is not None:
            self.registry.report(cluster.name, transition)

    async def __call__(
        self,
        request: HttpRequest,
        call_next: _CallNext,
        result: FlextResult[HttpResponse] | None = None,
    ) -> FlextResult[HttpResponse]:
        """Every attempt of the call (``result``: the last refusal, when one came already)."""
        target = self._target(request)
        if target is None:
            return await call_next(request)
        name, path, tried, key = target
        ext = request.extensions
        registry = self.registry
        now = registry.monotonic
        # Ends: each turn either returns or adds an instance to ``tried``, and a pick
        # with every instance tried returns one of them (then the last refusal returns).
        while True:
            # The cluster directly (same package): the registry's pick, without its
            # result object, on the hot path.
            cluster = self._clusters.get(name)
            at = now()
            instance = None if cluster is None else cluster.pick(at, key, tried or _NO_HOSTS)
            if cluster is None or instance is None:
                picked = await registry.get_instance(name, key=key, exclude=tried or _NO_HOSTS)
                failure = picked._error
                if failure is not None:
                    if result is not None:
                        return result
                    failure.request = request
                    return FlextResult(error=failure)
                instance = picked._value
                known = registry.cluster(name)
                assert known is not None  # a pick succeeded: the service is known
                cluster = known
                at = now()  # the first call for a name may have waited for the backend
            ident = instance.id
            if tried is not None:
                if result is not None and ident in tried:
                    return result  # every instance's breaker is open: the last refusal
                tried.add(ident)
            ext["service_instance"] = ident
            started = self._point(request, cluster, instance, path, at)
            status: int | None = None
            code: ErrorCode | None = None
            error: FlextApiError | None = None
            try:
                result = await call_next(request)
                error = result._error
                if error is None:
                    status = result._value.status_code
                elif error.code is not ErrorCode.CIRCUIT_OPEN and (
                    error.details.get("reason") != NOT_SENT
                ):
                    # A refusal of the instance's own breaker, or a deadline that passed
                    # before anything was sent, is no outcome of the instance's.
                    response = error.response
                    if response is None:
                        code = error.code
                    else:
                        status = response.status_code
            finally:
                # Also when cancelled: the in-flight count is released. A plain success
                # on a balancer that counts nothing is settled by the cluster's first test.
                self._record(cluster, instance, started, status, code)
            if error is not None and error.code is ErrorCode.CIRCUIT_OPEN:
                if tried is None:
                    tried = ext["service_tried"] = {ident}
                continue  # try another instance at once
            return result

    def _clock_changed(self, clock: Clock) -> None:
        """The client handed its clock (as a plugin): keep the one-reading shortcut true."""
        self._one_clock = self.registry.monotonic == clock.monotonic

    def settings(self) -> dict[str, Any]:
        """What ``flext_api.testing.describe`` shows for this stage."""
        return {"registry": self.registry.describe()}

    def __repr__(self) -> str:
        return f"<DiscoveryStage registry={self.registry!r}>"
