"""Discovery events: frozen payloads handed to the registry's hooks.

A hook is a plain callable ``(event) -> None``; a hook that raises is logged and
skipped, so observability never changes what the registry does. Picks are not events
(they are counted per instance in :meth:`ServiceRegistry.stats`): the hot path builds
no object per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import structlog

__all__ = [
    "DiscoveryEvent",
    "DiscoveryHook",
    "InstanceStateChanged",
    "ProbeCompleted",
    "RegistryStale",
    "emit",
]

_log = structlog.get_logger("flext_api.discovery")


@dataclass(frozen=True, slots=True)
class InstanceStateChanged:
    """``event`` is ``added``, ``removed``, ``up``, ``down``, ``ejected`` or ``readmitted``.

    ``ejected_for`` is the ejection time in seconds for ``ejected``, else None.
    """

    service: str
    instance_id: str
    event: str
    reason: str
    ejected_for: float | None = None


@dataclass(frozen=True, slots=True)
class ProbeCompleted:
    """An active health probe of an instance passed or failed."""

    service: str
    instance_id: str
    passed: bool
    status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RegistryStale:
    """The backend of ``service`` could not be reached (``stale``) or is back."""

    service: str
    stale: bool
    backend: str
    error: str | None


DiscoveryEvent: TypeAlias = InstanceStateChanged | ProbeCompleted | RegistryStale
DiscoveryHook: TypeAlias = Callable[[DiscoveryEvent], None]


def emit(hooks: Sequence[DiscoveryHook], event: DiscoveryEvent) -> None:
    """Hand ``event`` to every hook; one that raises is logged and skipped."""
    for hook in hooks:
        try:
            hook(event)
        except Exception:  # noqa: BLE001 - observability must never break discovery
            _log.exception("discovery event hook raised", event_type=type(event).__name__)
