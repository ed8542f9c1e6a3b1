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
from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from .._result import FlextResult
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
    """``service://orders/a?b`` -> ``("orders", "/a?b")``."""
    known = _splits.get(url)
    if known is not None:
        return known
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

    async def __call__(
        self, request: HttpRequest, call_next: _CallNext
    ) -> FlextResult[HttpResponse]:
        ext = request.extensions
        url = request.url
        if url.startswith(SERVICE_SCHEME):
            ext["service_url"] = url
        else:
            original = ext.get("service_url")
            if original is None:
                return await call_next(request)
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
        registry = self.registry
        clock = self._clock
        now = registry.monotonic
        one_clock = self._one_clock
        result: FlextResult[HttpResponse] | None = None
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
            base = instance.url
            request.url = base + path
            # The per-host stages below key on the instance: hand them its host.
            host = _hosts.get(base)
            if host is None:
                host = instance.host
                _remember(_hosts, base, host)
            request.host_hint(host)
            tracks = cluster.tracks_calls
            if tracks:
                cluster.balancer.on_start(instance)
            # One reading of the shared clock (the usual case) serves pick and start.
            started = at if one_clock else clock.monotonic()
            status: int | None = None
            code: ErrorCode | None = None
            error: FlextApiError | None = None
            try:
                result = await call_next(request)
                error = result._error
                if error is None:
                    status = result._value.status_code
                elif error.code is not ErrorCode.CIRCUIT_OPEN:
                    # A refusal of the instance's own breaker is no outcome of the call.
                    response = error.response
                    if response is None:
                        code = error.code
                    else:
                        status = response.status_code
            finally:
                # Also when cancelled: the in-flight count is released. A plain success
                # on a balancer that counts nothing is settled by the cluster's first test.
                ended = clock.monotonic()
                transition = cluster.record_call(
                    instance,
                    status=status,
                    error=code,
                    latency=ended - started,
                    now=ended if one_clock else now(),
                )
                if transition is not None:
                    registry.report(name, transition)
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
