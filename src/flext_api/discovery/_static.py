"""``StaticBackend``: services listed in configuration.

A mapping of service name -> instances, each a URL string or a dict with ``url`` and
optionally ``id``, ``weight``, ``zone``, ``metadata`` and ``health``::

    StaticBackend({"orders": ["http://10.0.0.5:8080",
                              {"url": "http://10.0.0.6:8080", "weight": 2}]})

The whole mapping is validated when the backend is built (a ``ConfigError`` names the
faulty entry; two entries of a service with one id are an error, not a replacement).
Instances registered at run time are added in memory, as with :class:`MemoryBackend`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigError, FlextApiError
from ._backend import MemoryBackend
from ._instance import ServiceInstance, is_service_name, validate_name

__all__ = ["StaticBackend", "instance_id_for"]


def instance_id_for(url: str) -> str:
    """A stable id for an instance known only by its URL: ``host-port``.

    An internationalised host is spelt in IDNA and any other character an id cannot
    hold (an IPv6 literal's ``:``, its zone's ``%``) becomes ``-``.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "host"
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    host = "".join(c if is_service_name(c) else "-" for c in host)
    return f"{host}-{port}"


class StaticBackend(MemoryBackend):
    """Instances from configuration (validated whole), kept in memory."""

    kind = "static"

    def __init__(self, services: Mapping[str, Sequence[str | Mapping[str, Any]]]) -> None:
        super().__init__()
        if not isinstance(services, Mapping):
            raise ConfigError(
                f"services must map a service name to its instances, got {type(services).__name__}"
            )
        for name, entries in services.items():
            if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
                raise ConfigError(
                    f"services.{name} must be a list of URLs or instance mappings, "
                    f"got {type(entries).__name__}"
                )
            for index, entry in enumerate(entries):
                where = f"services.{name}[{index}]"
                try:
                    validate_name(name)
                    data: dict[str, Any] = {"url": entry} if isinstance(entry, str) else dict(entry)
                    data.setdefault("id", instance_id_for(str(data.get("url", ""))))
                    data["name"] = name
                    instance = ServiceInstance.from_dict(data)
                except (FlextApiError, TypeError, ValueError) as exc:
                    message = exc.message if isinstance(exc, FlextApiError) else str(exc)
                    raise ConfigError(f"{where}: {message}") from exc
                known = self._services.setdefault(name, {})
                if instance.id in known:
                    # The later entry would silently replace the earlier one.
                    raise ConfigError(
                        f"{where}: duplicate instance id {instance.id!r} "
                        "(give each entry of a host and port its own 'id')"
                    )
                known[instance.id] = instance
