"""How a service built on flext-api is put together: dependency injection, events,
app plugins and background work.

``FlextContainer``, ``EventBus`` and ``Event`` are also importable from ``flext_api``.
The FastAPI helpers (``inject``) need the ``server`` extra and the Redis Streams
transport the ``redis`` extra; both are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr as _lazy_getattr
from ._container import DependencyCycleError as DependencyCycleError
from ._container import FlextContainer as FlextContainer
from ._container import Lifetime as Lifetime
from ._container import MissingRegistrationError as MissingRegistrationError
from ._container import RequestScope as RequestScope
from ._container import ScopeClosedError as ScopeClosedError
from ._events import Delivery as Delivery
from ._events import Event as Event
from ._events import EventBus as EventBus
from ._events import EventTransport as EventTransport
from ._events import current_delivery as current_delivery
from ._events import event_name as event_name
from ._idempotency import Idempotency as Idempotency
from ._idempotency import IdempotencyStore as IdempotencyStore
from ._idempotency import MemoryIdempotencyStore as MemoryIdempotencyStore
from ._idempotency import RedisIdempotencyStore as RedisIdempotencyStore
from ._idempotency import event_key as event_key
from ._plugins import APP_PLUGIN_GROUP as APP_PLUGIN_GROUP
from ._plugins import AppPlugin as AppPlugin
from ._plugins import AppPluginManager as AppPluginManager
from ._tasks import TaskSupervisor as TaskSupervisor

if TYPE_CHECKING:
    from ._fastapi import container_of as container_of
    from ._fastapi import inject as inject
    from ._fastapi import request_scope as request_scope
    from ._redis_events import RedisStreamTransport as RedisStreamTransport

__all__ = [
    "APP_PLUGIN_GROUP",
    "AppPlugin",
    "AppPluginManager",
    "Delivery",
    "DependencyCycleError",
    "Event",
    "EventBus",
    "EventTransport",
    "FlextContainer",
    "Idempotency",
    "IdempotencyStore",
    "Lifetime",
    "MemoryIdempotencyStore",
    "MissingRegistrationError",
    "RedisIdempotencyStore",
    "RedisStreamTransport",
    "RequestScope",
    "ScopeClosedError",
    "TaskSupervisor",
    "container_of",
    "current_delivery",
    "event_key",
    "event_name",
    "inject",
    "request_scope",
]

__getattr__ = _lazy_getattr(
    __name__,
    {
        "container_of": ("._fastapi", "server"),
        "inject": ("._fastapi", "server"),
        "request_scope": ("._fastapi", "server"),
        "RedisStreamTransport": ("._redis_events", "redis"),
    },
)
