"""``ServiceInstance``: one address of a named service, and ``ServiceChange``.

An instance is a value: the registry, the balancers and the health tracker never mutate
it. Its live health is kept apart, keyed by its service and :attr:`ServiceInstance.id`,
so registering the same id again (a restart, a reload) keeps what was learnt about it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._errors import ErrorCode, FlextApiError
from .._models import host_of
from .._syntax import check_origin_form, split_config_url

__all__ = [
    "HEALTHY",
    "UNHEALTHY",
    "ServiceChange",
    "ServiceInstance",
    "check_stored",
    "is_service_name",
    "validate_name",
]

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
_STATES = frozenset({HEALTHY, UNHEALTHY})
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_MAX_NAME = 200
#: A host name as a connection is made to it: ASCII labels (an IDN is checked in its
#: xn-- form).
#: urlsplit takes any character there ("h\\x", "h%0d%0a", "a%2fb"), which the
#: transport then refuses, or reads as another host, on every call.
_HOST_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")


def _invalid(message: str) -> FlextApiError:
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, message)


def is_service_name(text: str) -> bool:
    """True when ``text`` can name a service (or an instance): 1-200 letters, digits,
    ``-``, ``_`` and ``.``."""
    return 0 < len(text) <= _MAX_NAME and _NAME_CHARS.issuperset(text)


def validate_name(name: object, what: str = "service name") -> str:
    """``name`` when it is a usable service name or id; raises ``FlextApiError`` else."""
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
        raise _invalid(f"{what} must be a non-empty string of at most 200 characters")
    if not is_service_name(name):
        raise _invalid(f"{what} {name!r} may only hold letters, digits, '-', '_' and '.'")
    return name


def _check_host(instance_id: str, netloc: str, hostname: str) -> None:
    """Raise INVALID_REQUEST unless ``hostname`` is a DNS name or an IP literal."""
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise _invalid(
                f"instance {instance_id!r} url host [{hostname}] is not an IPv6 address"
            ) from None
        return
    try:
        # An internationalised name is sent in its xn-- form (as yarl does).
        ascii_name = hostname if hostname.isascii() else hostname.encode("idna").decode()
    except UnicodeError:
        ascii_name = ""
    if not _HOST_RE.fullmatch(ascii_name):
        raise _invalid(
            f"instance {instance_id!r} url host {hostname!r} must be a DNS name (letters, "
            "digits, '-', '_', '.') or an IP address"
        )


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One instance of a service: where to send calls, and how much.

    >>> ServiceInstance(id="o-1", name="orders", url="http://10.0.0.5:8080")  # doctest: +SKIP

    Args:
        id: unique within the service; health state is keyed by the service and it.
        name: the service's name (``service://NAME/path``).
        url: ``http(s)://host:port`` with an optional path prefix.
        health: ``"healthy"`` (takes traffic at once) or ``"unhealthy"`` (waits for a
            passing probe); what the registrant declares, not the live state.
        weight: relative share of traffic (1-10000).
        zone: locality, for zone-aware balancing.
        metadata: free-form string labels.
        last_check: kept for the seed's API; the live probe time is in the registry.
    """

    id: str
    name: str
    url: str
    health: str = HEALTHY
    weight: int = 1
    zone: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_check: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", str(self.url).rstrip("/"))
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __hash__(self) -> int:
        return hash((self.name, self.id))

    @property
    def host(self) -> str:
        """``host[:port]`` of :attr:`url`: the key of its circuit breaker."""
        return host_of(self.url)

    def validate(self) -> ServiceInstance:
        """Self when every field is usable; raises ``FlextApiError`` (INVALID_REQUEST)."""
        validate_name(self.name)
        validate_name(self.id, "instance id")
        if "@" in self.url.partition("://")[2].partition("/")[0]:
            # Not echoed: a password would reach stats(), the registry and the logs.
            raise _invalid(f"instance {self.id!r} url must not carry credentials (user@)")
        try:
            parts = split_config_url(self.url)
        except ValueError as exc:
            raise _invalid(f"instance {self.id!r} url {self.url!r}: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid(
                f"instance {self.id!r} url must be http(s)://host[:port][/prefix], got {self.url!r}"
            )
        # The characters, not urlsplit's parts: a bare "?" or "#" has none, and the path
        # of every call, appended to this URL, would land in the query or fragment.
        if "?" in self.url or "#" in self.url:
            raise _invalid(f"instance {self.id!r} url must not have a query or fragment")
        _check_host(self.id, parts.netloc.rpartition("@")[2], parts.hostname)
        if parts.path:
            try:
                check_origin_form(parts.path)
            except ValueError as exc:
                raise _invalid(f"instance {self.id!r} url path {parts.path!r} {exc}") from exc
        zone: object = self.zone
        if zone is not None and not isinstance(zone, str):
            # ZoneAware compares zones with ==: a number or a dict from a store would
            # never match, and the instance would silently count as another zone's.
            raise _invalid(f"instance {self.id!r} zone must be a string or None")
        weight: object = self.weight
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 10000:
            raise _invalid(f"instance {self.id!r} weight must be an int in 1..10000")
        health: object = self.health
        if not isinstance(health, str) or health not in _STATES:
            raise _invalid(f"instance {self.id!r} health must be 'healthy' or 'unhealthy'")
        if self.last_check is not None and not math.isfinite(self.last_check):
            raise _invalid(f"instance {self.id!r} last_check must be finite")
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the shared backends store)."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "health": self.health,
            "weight": self.weight,
            "zone": self.zone,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceInstance:
        """The instance ``data`` describes; raises ``FlextApiError`` when it is malformed."""
        try:
            instance = cls(
                id=data["id"],
                name=data["name"],
                url=data["url"],
                health=data.get("health", HEALTHY),
                weight=data.get("weight", 1),
                zone=data.get("zone"),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise _invalid(f"malformed instance record: {exc!r}") from exc
        return instance.validate()


def check_stored(instance: ServiceInstance, name: str, key_id: str) -> None:
    """Raise INVALID_REQUEST unless a record read from a store is the one its key names.

    A record under another service's name, or under another id's key (a hand-written
    key, a copied record), would otherwise join this service, or replace the live
    instance of that id with whatever address it holds, depending on listing order.
    """
    if instance.name != name or instance.id != key_id:
        raise _invalid(
            f"record stored under {name!r}/{key_id[:200]!r} describes "
            f"{instance.name!r}/{instance.id!r}"
        )


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """What changed in one service: the instances added, removed or updated.

    ``instances`` is the whole set after the change. ``stale`` is True while the
    registry serves the last known set because its backend cannot be reached.
    """

    name: str
    added: tuple[ServiceInstance, ...]
    removed: tuple[ServiceInstance, ...]
    updated: tuple[ServiceInstance, ...]
    instances: tuple[ServiceInstance, ...]
    stale: bool = False


def diff(
    name: str,
    old: Mapping[str, ServiceInstance],
    new: Mapping[str, ServiceInstance],
    *,
    stale: bool = False,
) -> ServiceChange | None:
    """The change from ``old`` to ``new`` (both keyed by id), or None when equal."""
    added = tuple(i for k, i in new.items() if k not in old)
    removed = tuple(i for k, i in old.items() if k not in new)
    updated = tuple(i for k, i in new.items() if k in old and old[k] != i)
    if not (added or removed or updated):
        return None
    return ServiceChange(name, added, removed, updated, tuple(new.values()), stale)
