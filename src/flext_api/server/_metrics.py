"""Prometheus metrics of the server, on a registry owned by the app.

A per-app ``CollectorRegistry`` (not the process-global one) lets several apps - tests,
a service mounting a sub-app - live in one process without "Duplicated timeseries" errors.

Series are bounded by construction (research/server.md §2.1, the cardinality complaints
of starlette-prometheus#7 and starlette_exporter#78): ``route`` is the matched route
*template*, every unmatched path shares ``<unmatched>``; ``method`` outside the standard
nine becomes ``_OTHER`` (OTel's convention); ``status`` is grouped into ``2xx``... unless
configured otherwise. A request cancelled before its response is counted as ``499``.

The histogram is a small custom collector rather than ``prometheus_client.Histogram``:
the library's histogram takes a lock for the sum and for the bucket on every observation,
and this one is observed on every request from the event loop thread only, where plain
integer increments are safe. Exposition still goes through ``prometheus_client``.

``PROMETHEUS_MULTIPROC_DIR`` (one registry across worker processes) is not supported:
scrape each worker, or run one worker per container.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response

from ._problem import problem_response

__all__ = [
    "STANDARD_METHODS",
    "DurationHistogram",
    "ServerMetrics",
    "metrics_endpoint",
]

STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_CLIENT_CLOSED = 499
_LABELS = ("method", "route", "status")
_go_float: Callable[[float], str] = floatToGoString  # "0.005", "1.0", "+Inf" (untyped upstream)


class DurationHistogram:
    """A lock-free labelled histogram collector (see module docstring).

    Each label set keeps one list: per-bucket counts (the last one is +Inf), then the
    running sum; buckets are made cumulative only when scraped.
    """

    def __init__(self, name: str, documentation: str, buckets: Iterable[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = sorted(float(b) for b in buckets)
        self._bound_labels = [_go_float(b) for b in self.bounds] + ["+Inf"]
        self._series: dict[tuple[str, str, str], list[float]] = {}

    def series(self, labels: tuple[str, str, str]) -> list[float]:
        """The ``[bucket counts..., sum]`` list of ``labels``, created on first use.

        The caller counts an observation of ``seconds`` as
        ``series[bisect_left(bounds, seconds)] += 1`` and ``series[-1] += seconds``.
        """
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self.bounds) + 2)
        return series

    def describe(self) -> Iterator[Metric]:
        """The family without samples (lets the registry check names on register)."""
        yield HistogramMetricFamily(self.name, self.documentation, labels=_LABELS)

    def collect(self) -> Iterator[Metric]:
        """The family with one cumulative histogram per label set."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=_LABELS)
        for labels, series in list(self._series.items()):
            running = 0.0
            buckets = []
            for bound, count in zip(self._bound_labels, series[:-1], strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric(list(labels), buckets, series[-1])
        yield family


class ServerMetrics:
    """The request-duration histogram and the in-progress gauge of one app.

    The gauge is read at scrape time from the in-flight count the stack keeps anyway
    (:meth:`track_in_progress`), instead of two locked updates per request.
    """

    def __init__(
        self,
        *,
        buckets: Iterable[float],
        group_status_codes: bool = True,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.duration = DurationHistogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests, to the last response byte.",
            buckets,
        )
        self.registry.register(self.duration)
        self.active = Gauge(
            "http_server_active_requests",
            "HTTP server requests in progress.",
            registry=self.registry,
        )
        self._group = group_status_codes
        # (method, route, status) -> the histogram series of its labels, found in one
        # lookup per request; the label tuple is built once per key.
        self._series: dict[tuple[str, str, int | None], list[float]] = {}
        self._bounds = self.duration.bounds

    def track_in_progress(self, count: Callable[[], float]) -> None:
        """Read the in-progress gauge from ``count`` at scrape time (no per-request cost)."""
        self.active.set_function(count)

    def observe(self, method: str, route: str, status: int | None, seconds: float) -> None:
        """Record one finished request (``method`` already one of :data:`STANDARD_METHODS`
        or ``_OTHER``)."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            code = status if status is not None else _CLIENT_CLOSED
            label = f"{code // 100}xx" if self._group else str(code)
            series = self._series[key] = self.duration.series((method, route, label))
        series[bisect_left(self._bounds, seconds)] += 1
        series[-1] += seconds

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_endpoint(
    metrics: ServerMetrics, token: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving ``metrics``; with ``token``, only to ``Bearer <token>``.

    Raises:
        ValueError: ``token`` is empty (it would protect nothing).
    """
    if token is not None and not token:
        raise ValueError("the metrics token is empty; pass None for an unprotected endpoint")
    expected = token.encode() if token is not None else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            # compare_digest on bytes: constant time in the secret's length. Starlette
            # decoded the header as latin-1; encoding it back gives the bytes sent, so a
            # non-ASCII token sent as UTF-8 (as Prometheus and curl do) matches.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode("latin-1"), expected
            ):
                return problem_response(
                    401,
                    scope=request.scope,
                    detail="A valid bearer token is required.",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint
