"""Observability plugins: structured logs, Prometheus metrics, OpenTelemetry tracing.

List them first in ``plugins=[...]`` (outermost, as the default pipeline does): each
then sees a call once, each attempt through its ``attempt_stage()`` (placed by the
client below retry and auth), and the resilience events (retries, breaker changes,
limiter waits) of its own calls. Secrets are masked everywhere (see ``Redactor``).

``MetricsPlugin`` needs ``prometheus-client`` and resolves on first use; ``TracingPlugin``
imports OpenTelemetry only when built, and does nothing when it is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._logging import LoggingPlugin as LoggingPlugin
from ._propagation import RequestIdPropagation as RequestIdPropagation
from ._redaction import Redactor as Redactor
from ._tracing import TracingPlugin as TracingPlugin

if TYPE_CHECKING:
    from ._metrics import MetricsPlugin as MetricsPlugin

__all__ = [
    "LoggingPlugin",
    "MetricsPlugin",
    "Redactor",
    "RequestIdPropagation",
    "TracingPlugin",
]


def __getattr__(name: str) -> Any:
    if name != "MetricsPlugin":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module("._metrics", __name__)
    except ImportError as exc:
        raise ImportError(
            "flext_api.client.observability.MetricsPlugin needs prometheus-client: "
            f"pip install 'flext-api[metrics]' ({exc})"
        ) from exc
    value = module.MetricsPlugin
    globals()[name] = value
    return value
