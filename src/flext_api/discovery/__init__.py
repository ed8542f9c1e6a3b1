"""Service discovery: services called by name, health-checked and load-balanced.

The layer sits above :mod:`flext_api.resilience` and the transports and below the
client: ``FlextApiClient(registry=...)`` resolves ``service://NAME/path`` through it,
and the gateway builds its clusters from the same parts. Everything that decides
(health, outlier ejection, balancing) is sans-IO with an injected clock.

Public API (stable):

* :class:`ServiceInstance` ``(id, name, url, health="healthy", weight=1, zone=None,
  metadata={}, last_check=None)`` - a frozen value; ``to_dict``/``from_dict``,
  ``validate()``, ``host``.
* :class:`ServiceRegistry` ``(backend=None, *, balancer="round_robin",
  health_check=None, outlier=None, clock=None, hooks=())``:
  ``await register(name, instance)``, ``await unregister(name, instance_id)``,
  ``instances(name)``, ``await get_instance(name, key=None, exclude=())``,
  ``pick(...)`` (no wait), ``await refresh(name)``, ``watch(name)`` (async iterator of
  :class:`ServiceChange`), ``record_call(...)`` / ``on_start(...)`` (passive health and
  balancer feedback), ``cluster(name)``, ``stats()``, ``describe()``,
  ``async with`` / ``aclose()`` (runs the active prober). Every fallible call returns
  a ``FlextResult``.
* :class:`RegistryBackend` (protocol: ``kind``, ``shared``, ``register``,
  ``unregister``, ``list``, ``changes``, ``aclose``) and :class:`MemoryBackend`;
  ``RedisBackend`` (``redis`` extra), ``EtcdBackend``, ``StaticBackend`` and
  ``DnsBackend`` (``dns`` extra).
* Health, keyed by service and instance id: :class:`HealthCheckConfig`, :class:`OutlierConfig`,
  :class:`HealthTracker`, :class:`InstanceHealth`, :class:`Transition`.
* :class:`Cluster` - one service's instances, available set and balancer.
* Balancers (:class:`LoadBalancer` protocol: ``update``, ``pick(key, exclude)``,
  ``on_start``, ``on_finish``): :class:`RoundRobin`, :class:`RandomBalancer`,
  :class:`LeastRequest`, :class:`PeakEwma`, :class:`RingHash`, :class:`Maglev`,
  :class:`ZoneAware`;
  :data:`BALANCERS` and :func:`make_balancer` by name.
* Events for ``hooks``: :class:`InstanceStateChanged`, :class:`ProbeCompleted`,
  :class:`RegistryStale`; ``DiscoveryCollector(registry)`` (``metrics`` extra) exposes
  instances by state, stale and panic flags, picks, ejections and probe results to
  Prometheus.
* :class:`ServiceClient` ``(registry, name)`` - the seed's thin wrapper over
  ``FlextApiClient(registry=...)``; it lives in the client layer and is resolved here
  on first access, so this package never imports the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr as _lazy_getattr
from ._backend import MemoryBackend as MemoryBackend
from ._backend import RegistryBackend as RegistryBackend
from ._balancers import BALANCERS as BALANCERS
from ._balancers import LeastRequest as LeastRequest
from ._balancers import LoadBalancer as LoadBalancer
from ._balancers import Maglev as Maglev
from ._balancers import PeakEwma as PeakEwma
from ._balancers import RandomBalancer as RandomBalancer
from ._balancers import RingHash as RingHash
from ._balancers import RoundRobin as RoundRobin
from ._balancers import ZoneAware as ZoneAware
from ._balancers import make_balancer as make_balancer
from ._cluster import Cluster as Cluster
from ._events import DiscoveryEvent as DiscoveryEvent
from ._events import DiscoveryHook as DiscoveryHook
from ._events import InstanceStateChanged as InstanceStateChanged
from ._events import ProbeCompleted as ProbeCompleted
from ._events import RegistryStale as RegistryStale
from ._health import HealthCheckConfig as HealthCheckConfig
from ._health import HealthTracker as HealthTracker
from ._health import InstanceHealth as InstanceHealth
from ._health import OutlierConfig as OutlierConfig
from ._health import Transition as Transition
from ._instance import ServiceChange as ServiceChange
from ._instance import ServiceInstance as ServiceInstance
from ._registry import ServiceRegistry as ServiceRegistry
from ._static import StaticBackend as StaticBackend

if TYPE_CHECKING:
    from ..client._service import ServiceClient as ServiceClient
    from ._dns import DnsBackend as DnsBackend
    from ._etcd import EtcdBackend as EtcdBackend
    from ._metrics import DiscoveryCollector as DiscoveryCollector
    from ._redis import RedisBackend as RedisBackend

__all__ = [
    "BALANCERS",
    "Cluster",
    "DiscoveryCollector",
    "DiscoveryEvent",
    "DiscoveryHook",
    "DnsBackend",
    "EtcdBackend",
    "HealthCheckConfig",
    "HealthTracker",
    "InstanceHealth",
    "InstanceStateChanged",
    "LeastRequest",
    "LoadBalancer",
    "Maglev",
    "MemoryBackend",
    "OutlierConfig",
    "PeakEwma",
    "ProbeCompleted",
    "RandomBalancer",
    "RedisBackend",
    "RegistryBackend",
    "RegistryStale",
    "RingHash",
    "RoundRobin",
    "ServiceChange",
    "ServiceClient",
    "ServiceInstance",
    "ServiceRegistry",
    "StaticBackend",
    "Transition",
    "ZoneAware",
    "make_balancer",
]

__getattr__ = _lazy_getattr(
    __name__,
    {
        "DiscoveryCollector": ("._metrics", "metrics"),
        "DnsBackend": ("._dns", "dns"),
        "EtcdBackend": ("._etcd", None),
        "RedisBackend": ("._redis", "redis"),
        "ServiceClient": ("flext_api.client._service", None),
    },
)
