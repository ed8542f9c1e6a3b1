"""The FLEXT architecture guide's ``FlextApiCache`` config keys, mapped onto ours.

The guide configures::

    FlextApiCache(backend="redis", config={"host", "port", "db", "password", "decode_responses"})
    FlextApiCache(backend="memory", config={"max_size": 1000, "ttl": 300})
    FlextApiCache(backend="filesystem", config={"cache_dir", "max_size", "cleanup_interval"})

:func:`seed_options` rewrites those keys to the backends' own (``url``, ``max_entries``,
``default_ttl``, ``path``, ``max_bytes``); ``cleanup_interval`` is the filesystem
backend's own key. ``decode_responses`` is accepted for either value: values come back
as they were stored (``bytes`` as bytes, JSON as objects) whatever it says, which is
what it asks for. A seed key beside its modern twin is a :class:`ConfigError`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .._errors import ConfigError

__all__ = ["seed_options"]

_RENAMES: dict[str, dict[str, str]] = {
    "memory": {"max_size": "max_entries", "ttl": "default_ttl"},
    "filesystem": {"cache_dir": "path", "max_size": "max_bytes", "ttl": "default_ttl"},
    "redis": {"ttl": "default_ttl"},
}
_REDIS_PARTS = ("host", "port", "db", "password", "username")


def _rename(backend: str, options: dict[str, Any], old: str, new: str) -> None:
    if old not in options:
        return
    if new in options:
        raise ConfigError(
            f"{backend!r} cache config has both {old!r} and {new!r}: give one",
            details={"backend": backend, "keys": [old, new]},
        )
    options[new] = options.pop(old)


def _int_part(parts: dict[str, Any], name: str, default: int) -> int:
    value = parts.get(name)
    if value is None or value == "" or value == 0:
        return default  # absent or empty: the default, as before (port 0 is no port)
    try:
        number = int(value) if not isinstance(value, bool | float) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < 0:
        raise ConfigError(
            f"redis cache config {name!r} must be a non-negative integer, got {value!r}",
            details={"backend": "redis", "key": name},
        )
    return number


def _redis_url(options: dict[str, Any]) -> None:
    parts = {k: options.pop(k) for k in _REDIS_PARTS if k in options}
    if not parts:
        return
    if "url" in options:
        raise ConfigError(
            f"redis cache config has both 'url' and {sorted(parts)}: give one",
            details={"backend": "redis", "keys": ["url", *sorted(parts)]},
        )
    host = str(parts.get("host") or "localhost")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    port = _int_part(parts, "port", 6379)
    db = _int_part(parts, "db", 0)
    user = quote(str(parts.get("username") or ""), safe="")
    password = parts.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else ""
    if user and not password:
        auth = f"{user}@"
    options["url"] = f"redis://{auth}{host}:{port}/{db}"


def seed_options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the guide's keys for ``backend`` rewritten to ours (a new dict)."""
    out = dict(options)
    for old, new in _RENAMES.get(backend, {}).items():
        _rename(backend, out, old, new)
    if backend == "redis":
        decode = out.pop("decode_responses", None)
        if decode is not None and not isinstance(decode, bool):
            raise ConfigError(
                f"redis decode_responses must be true or false, got {decode!r}",
                details={"backend": "redis", "key": "decode_responses"},
            )
        _redis_url(out)
    return out
