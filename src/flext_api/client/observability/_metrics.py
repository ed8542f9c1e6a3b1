"""MetricsPlugin: Prometheus metrics of the client, named after OpenTelemetry's HTTP ones.

Series (``registry`` is the plugin's own ``CollectorRegistry`` unless you pass one, so
two clients or two tests never collide on "Duplicated timeseries"):

==============================================  =============================================
``http_client_request_duration_seconds``        histogram per call (retries and backoff
                                                included): ``http_request_method``,
                                                ``server_address``, ``status_class``,
                                                ``error_type`` (an ``ErrorCode`` or "")
``http_client_active_requests``                 gauge of calls in flight
``http_client_retries_total``                   retries scheduled
``http_client_circuit_breaker_state``           1 for the breaker's current ``state``, else 0
``http_client_circuit_breaker_transitions_total``  ``from_state`` -> ``to_state``
``http_client_rate_limit_wait_seconds``         histogram of waits in the client limiter
``http_client_cache_requests_total``            ``result``: the response's ``cache_status``
                                                (hit, revalidated, stale, miss)
``http_client_pool_connections``                per watched client (:meth:`watch`), read at
                                                scrape time: ``state`` in_use/idle/waiting
==============================================  =============================================

Cardinality is bounded by construction: no path, query or URL in any label; a method
outside the known set is ``_OTHER``; ``server_address`` is ``host:port`` and, past
``max_servers`` distinct servers, ``_OTHER``. Retry, breaker and limiter series come
from the resilience events of this plugin's own calls (see ``_scope``).

Needs ``prometheus-client`` (the ``metrics`` extra; ``server`` includes it).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..._clock import Clock
from ..._errors import ErrorCode
from ..._models import HttpRequest, HttpResponse
from ..._numbers import is_int
from ..._result import FlextResult
from ...resilience import (
    BreakerStateChanged,
    RateLimitWaited,
    ResilienceEvent,
    RetryScheduled,
)
from .._plugin import CallNext, FlextApiPlugin
from ._scope import (
    CallState,
    normalize_method,
    pop,
    push,
    response_of,
    status_class,
)

if TYPE_CHECKING:
    from .._client import FlextApiClient

__all__ = ["DEFAULT_BUCKETS", "MetricsPlugin"]

#: OpenTelemetry's advice for ``http.client.request.duration`` (seconds).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_OTHER = "_OTHER"


class _BoundedLabels:
    """Passes the first ``limit`` distinct values, maps later ones to ``_OTHER``."""

    __slots__ = ("_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return _OTHER
            self._seen.add(value)
        return value


class _PoolCollector(Collector):
    """Reads ``client.stats()["pool"]`` of the watched clients at scrape time."""

    def __init__(self) -> None:
        self.clients: dict[str, weakref.ref[FlextApiClient]] = {}

    def collect(self) -> Iterator[Metric]:
        conns = GaugeMetricFamily(
            "http_client_pool_connections",
            "Connections of the client's pool by state (in_use, idle, waiting).",
            labels=["client", "state"],
        )
        limit = GaugeMetricFamily(
            "http_client_pool_max_connections",
            "Size limit of the client's connection pool.",
            labels=["client"],
        )
        for name, ref in list(self.clients.items()):
            client = ref()
            if client is None or client.is_closed:
                self.clients.pop(name, None)
                continue
            pool: dict[str, Any] = client.stats()["pool"]
            for state in ("in_use", "idle", "waiting"):
                conns.add_metric([name, state], float(pool.get(state, 0)))
            limit.add_metric([name], float(pool.get("max_connections", 0)))
        yield conns
        yield limit


class MetricsPlugin(FlextApiPlugin):
    """Prometheus metrics of every call (see the module docstring for the series).

    >>> plugin = MetricsPlugin()
    >>> b"http_client_request_duration_seconds" in plugin.exposition()
    True

    Args:
        registry: where the series live (default: a new ``CollectorRegistry``).
        buckets: duration histogram buckets in seconds.
        max_servers: distinct ``server_address`` values kept before ``_OTHER``.
        clock: injectable clock for durations.
    """

    name = "metrics"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    #: The ``Content-Type`` of :meth:`exposition`.
    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_servers: int = 100,
        clock: Clock | None = None,
    ) -> None:
        if not is_int(max_servers):
            # NaN or a float passes a "< 1" check and, compared with a count, never
            # caps anything: the server label would grow without bound.
            raise TypeError(f"max_servers must be an int, got {max_servers!r}")
        if max_servers < 1:
            raise ValueError(f"max_servers must be >= 1, got {max_servers}")
        self.registry = registry if registry is not None else CollectorRegistry()
        # Built unregistered, then registered together: a registry that already holds
        # one of these series (another MetricsPlugin's) is left as it was.
        call_labels = ["http_request_method", "server_address"]
        self.request_duration = Histogram(
            "http_client_request_duration_seconds",
            "Duration of client calls, retries and backoff included.",
            [*call_labels, "status_class", "error_type"],
            buckets=buckets,
            registry=None,
        )
        self.active_requests = Gauge(
            "http_client_active_requests", "Client calls in flight.", call_labels, registry=None
        )
        self.retries = Counter(
            "http_client_retries", "Retries scheduled by the retry stage.", call_labels,
            registry=None,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "http_client_circuit_breaker_state",
            "1 for the circuit breaker's current state, 0 for the others.",
            ["server_address", "state"],
            registry=None,
        )
        self.breaker_transitions = Counter(
            "http_client_circuit_breaker_transitions",
            "Circuit breaker state changes.",
            ["server_address", "from_state", "to_state"],
            registry=None,
        )
        self.rate_limit_wait = Histogram(
            "http_client_rate_limit_wait_seconds",
            "Time calls waited in the client-side rate limiter.",
            ["server_address"],
            buckets=buckets,
            registry=None,
        )
        self.cache_requests = Counter(
            "http_client_cache_requests",
            "Calls answered by or through the HTTP cache, by cache status.",
            ["server_address", "result"],
            registry=None,
        )
        self._register(
            self.request_duration, self.active_requests, self.retries, self.breaker_state,
            self.breaker_transitions, self.rate_limit_wait, self.cache_requests,
        )  # fmt: skip
        self._servers = _BoundedLabels(max_servers)
        self._pool = _PoolCollector()
        self._pool_registered = False
        self._init_clock(clock)

    def _register(self, *collectors: Collector) -> None:
        """Register ``collectors`` in :attr:`registry`, all or none.

        Raises:
            ValueError: the registry already holds one of their series (another
                MetricsPlugin's); nothing of this plugin is left in it.
        """
        done: list[Collector] = []
        for collector in collectors:
            try:
                self.registry.register(collector)
            except ValueError as exc:
                for registered in done:
                    self.registry.unregister(registered)
                raise ValueError(
                    "this registry already holds the http_client_* series (of another "
                    "MetricsPlugin?): share one MetricsPlugin between clients, or give "
                    f"each plugin its own registry ({exc})"
                ) from exc
            done.append(collector)

    # -- the call ----------------------------------------------------------------------------
    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Time the call and count its outcome."""
        state = CallState(request, self._clock.monotonic())
        state.data = server = self._servers(state.server)
        method = normalize_method(request.method)
        active = self.active_requests.labels(method, server)
        active.inc()
        token = push(self, state)
        try:
            result = await call_next(request)
        except (asyncio.CancelledError, Exception) as exc:
            # Counted like the other outcomes, as the logs and spans record them: a
            # cancellation is CANCELLED; a plugin that raised (a breaker's ``key``
            # function...) is the PLUGIN_ERROR the pipeline's guard makes of it.
            code = ErrorCode.PLUGIN_ERROR if isinstance(exc, Exception) else ErrorCode.CANCELLED
            self.request_duration.labels(method, server, "none", code.value).observe(
                self._clock.monotonic() - state.started
            )
            raise
        finally:
            pop(token)
            active.dec()
        response = response_of(result)
        error = result.exception
        self.request_duration.labels(
            method, server, status_class(response), "" if error is None else error.code.value
        ).observe(self._clock.monotonic() - state.started)
        if response is not None and response.cache_status is not None:
            self.cache_requests.labels(server, response.cache_status).inc()
        return result

    def on_resilience_event(self, event: ResilienceEvent, state: CallState) -> None:
        """Count a retry, a breaker transition or a limiter wait of this call."""
        server: str = state.data
        if isinstance(event, RetryScheduled):
            self.retries.labels(normalize_method(state.request.method), server).inc()
        elif isinstance(event, BreakerStateChanged):
            self.breaker_transitions.labels(server, event.old, event.new).inc()
            self.breaker_state.labels(server, event.old).set(0)
            self.breaker_state.labels(server, event.new).set(1)
        elif isinstance(event, RateLimitWaited):
            self.rate_limit_wait.labels(server).observe(event.waited)

    # -- pool and exposition -----------------------------------------------------------------
    def watch(self, client: FlextApiClient, name: str = "default") -> None:
        """Report ``client``'s pool figures at every scrape, labelled ``client=name``.

        The client is held weakly and dropped once closed; ``name`` must be unique
        among the live clients this plugin watches.
        """
        held = self._pool.clients.get(name)
        other = None if held is None else held()
        if other is not None and other is not client and not other.is_closed:
            raise ValueError(f"a client named {name!r} is already watched")
        self._pool.clients[name] = weakref.ref(client)
        if not self._pool_registered:
            self.registry.register(self._pool)
            self._pool_registered = True

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (serve it with :attr:`content_type`)."""
        return generate_latest(self.registry)

    def label_values(self, label: str) -> set[str]:
        """Every value ``label`` takes in the registry now (to check cardinality)."""
        values: set[str] = set()
        for metric in self.registry.collect():
            for sample in metric.samples:
                if label in sample.labels:
                    values.add(sample.labels[label])
        return values

    def __repr__(self) -> str:
        return f"<MetricsPlugin servers={len(self._servers._seen)}/{self._servers.limit}>"
