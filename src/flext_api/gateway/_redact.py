"""Secrets out of what the admin port shows: the config dump, clusters, the dashboard.

Imported at module level by both :mod:`._admin` and :mod:`._edge_admin` (``_admin``
imports ``_edge_admin``, so this cannot live in either). Distinct from
:mod:`flext_api._redact`, which redacts log records with ``[REDACTED]``: here a secret
reads ``**********``, as a pydantic ``SecretStr`` dumps.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact"]

_REDACTED = "**********"
# Mappings of names to digests of credentials (an API key's SHA-256 is worth a brute force).
_HASH_MAPS = frozenset({"api_key_hashes"})


def redact(value: Any) -> Any:
    """``value`` (a JSON-able dump) with every secret a plain string may carry replaced by
    ``**********``: the password of a URL (``redis://:pw@host``, an instance's
    ``http://user:pw@host``) and a stored password hash (``pbkdf2_sha256$...``)."""
    if isinstance(value, dict):
        return {
            key: dict.fromkeys(item, _REDACTED)
            if key in _HASH_MAPS and isinstance(item, dict)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        if value.startswith("pbkdf2_sha256$"):
            return _REDACTED
        if "@" in value and "://" in value:
            return _redact_url(value)
    return value


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL after all: keep nothing that may hold a secret
        return _REDACTED
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{_REDACTED}@{host}"))
