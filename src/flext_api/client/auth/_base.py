"""What every auth plugin shares: credential checks and marking secrets for redaction.

Auth plugins sit just above the transport (inside retry), so each attempt is
authenticated afresh. They never mutate the caller's request: each attempt gets a copy
carrying the credential, and the names of the headers and query parameters that now
hold a secret are recorded in ``request.extensions[SENSITIVE_EXTENSION]``. The
observability plugins read that mark and mask those values even when the names are not
in their default lists (an API key sent as ``X-Tenant-Key``, say).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..._models import HttpRequest
from .._sensitive import SENSITIVE_EXTENSION, SensitiveNames

__all__ = [
    "SENSITIVE_EXTENSION",
    "SensitiveNames",
    "check_credential",
    "check_header_credential",
    "mark_sensitive",
    "with_header",
]

# RFC 9110 §5.5 forbids CTLs in field values; a credential with one could also split a
# header. Checked here without echoing the value, unlike validate_header's message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def mark_sensitive(
    request: HttpRequest, *, headers: Iterable[str] = (), params: Iterable[str] = ()
) -> None:
    """Record that ``request`` carries secrets in these headers / query parameters."""
    current: Any = request.extensions.get(SENSITIVE_EXTENSION)
    base = current if isinstance(current, SensitiveNames) else SensitiveNames()
    request.extensions[SENSITIVE_EXTENSION] = base.union(headers, params)


def with_header(request: HttpRequest, name: str, value: str) -> HttpRequest:
    """A copy of ``request`` with header ``name`` set to the secret ``value``."""
    out = request.copy()
    out.headers.set(name, value)
    mark_sensitive(out, headers=(name,))
    return out


def check_credential(value: object, what: str) -> str:
    """``value`` if it is a usable credential string; TypeError/ValueError otherwise.

    The message names ``what`` but never shows the value: it is a secret.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control character (CR, LF, NUL...)")
    return value


def check_header_credential(value: object, what: str) -> str:
    """``value`` if it can be sent as (part of) a header value; TypeError/ValueError otherwise.

    On top of :func:`check_credential`, the value must be ASCII: RFC 9110 §5.5 treats
    other bytes as opaque ``obs-text``, and the transports disagree on them (aiohttp and
    pyreqwest send UTF-8, H1Transport Latin-1, httpx2 fails with ``UnicodeEncodeError``),
    so one credential would reach the server as different bytes, or not at all,
    depending on the transport. The message never shows the value.
    """
    checked = check_credential(value, what)
    if not checked.isascii():
        raise ValueError(f"{what} contains a non-ASCII character (a header value must be ASCII)")
    return checked
