"""Observability plugins: structured logs, Prometheus metrics, OpenTelemetry tracing.

List them first in ``plugins=[...]`` (outermost, as the default pipeline does): each
then sees a call once, each attempt through its ``attempt_stage()`` (placed by the
client below retry and auth), and the resilience events (retries, breaker changes,
limiter waits) of its own calls. Secrets are masked everywhere (see ``Redactor``).

``MetricsPlugin`` needs ``prometheus-client`` and resolves on first use; ``TracingPlugin``
imports OpenTelemetry only when built, and does nothing when it is not installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_getattr as _lazy_getattr
from ._logging import LoggingPlugin as LoggingPlugin
from ._redaction import Redactor as Redactor
from ._tracing import TracingPlugin as TracingPlugin

if TYPE_CHECKING:
    from ._metrics import MetricsPlugin as MetricsPlugin

__all__ = [
    "LoggingPlugin",
    "MetricsPlugin",
    "Redactor",
    "TracingPlugin",
]


__getattr__ = _lazy_getattr(__name__, {"MetricsPlugin": ("._metrics", "metrics")})
