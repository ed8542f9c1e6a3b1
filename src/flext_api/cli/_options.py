"""Parsing the command line's values: headers, bodies, rates, and the client config.

Every bad value raises ``typer.BadParameter`` naming the option, so the user gets one
line and exit status 2 (click's usage-error status), never a traceback.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import orjson
import typer

from .._config import ClientConfig, PoolConfig, RateLimitConfig, RetryConfig, TimeoutConfig
from .._errors import FlextApiError
from .._models import validate_header
from .._redact import REDACTED, secret_name, strip_url
from ..client._request import normalize_base_url

__all__ = [
    "NO_REGISTRY",
    "check_text",
    "check_url_text",
    "client_config",
    "parse_base_url",
    "parse_body",
    "parse_headers",
    "parse_json",
    "parse_rate",
    "parse_timeout",
]

#: Why a ``service://`` URL cannot be used: the client has no discovery registry.
NO_REGISTRY = "service:// URLs need a discovery registry; the command has none"

_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def check_text(value: str, option: str, *, shown: str | None = None) -> str:
    """``value`` if it is valid text; an argument with bytes that are not UTF-8 arrives
    with surrogate escapes, which cannot be encoded into a request. The error shows
    ``shown`` (what may be shown of the value) when given, else the value."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        what = shown if shown is not None else repr(value)
        raise typer.BadParameter(f"{what} is not valid UTF-8 text", param_hint=option) from None
    return value


def check_url_text(value: str, option: str) -> str:
    """:func:`check_text` for a URL: the error shows it without its userinfo and query
    (``user:password@``, ``?token=``), as the client's own URL errors do."""
    return check_text(value, option, shown=repr(strip_url(value)))


def parse_headers(values: list[str] | None) -> list[tuple[str, str]]:
    """``["Name: value", ...]`` -> pairs; each is validated like a request header. A
    credential header's value (``Authorization``...) is never shown in the error."""
    pairs: list[tuple[str, str]] = []
    for raw in values or []:
        name, sep, value = raw.partition(":")
        name, value = name.strip(), value.strip()
        shown = f"{name}: {REDACTED}" if sep and secret_name(name) else raw
        check_text(raw, "'-H'", shown=repr(shown))
        if not sep or not name:
            raise typer.BadParameter(f"{raw!r} is not 'Name: value'", param_hint="'-H'")
        try:
            validate_header(name, value)
        except FlextApiError as exc:  # a credential's value is not quoted (_syntax)
            raise typer.BadParameter(exc.message, param_hint="'-H'") from exc
        pairs.append((name, value))
    return pairs


def parse_body(value: str, option: str) -> bytes:
    """The text itself, or the contents of the file named after ``@``."""
    if not value.startswith("@"):
        return check_text(value, option).encode("utf-8")
    path = Path(value[1:])
    try:
        return path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {str(path)!r}: {exc.strerror}", param_hint=option
        ) from exc


def parse_json(value: str) -> Any:
    """``--json``: JSON text (or ``@file``), parsed so the body is sent compact."""
    raw = parse_body(value, "'--json'")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="'--json'") from exc


def parse_rate(value: str) -> float:
    """``100/s``, ``600/min``, ``2/h`` or ``100`` (per second) -> requests per second."""
    match = _RATE_RE.match(value)
    # float() of 400 digits is inf, which no token bucket can hold.
    if match is None or not 0 < float(match.group(1)) < math.inf:
        raise typer.BadParameter(
            f"{value!r} is not a rate like 100/s, 600/min or 2/h", param_hint="'--rate'"
        )
    return float(match.group(1)) / _PER[match.group(2) or "s"]


def parse_timeout(value: float | None, option: str = "'--timeout'") -> float | None:
    """``--timeout`` (or ``option``): a finite number of seconds (click's range check
    lets ``inf`` and ``nan`` by)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value!r} is not a finite number of seconds", param_hint=option)
    return value


def parse_base_url(value: str | None) -> str | None:
    """``--base-url``: an absolute http(s) URL, checked as the client would check it."""
    if value is None:
        return None
    try:
        url = normalize_base_url(check_url_text(value, "'--base-url'"))
    except FlextApiError as exc:
        raise typer.BadParameter(exc.message, param_hint="'--base-url'") from exc
    if url is not None and url.startswith("service://"):
        raise typer.BadParameter(NO_REGISTRY, param_hint="'--base-url'")
    return value


def client_config(
    *,
    retries: int | None = None,
    timeout: float | None = None,
    http2: bool = False,
    rate: float | None = None,
    concurrency: int | None = None,
) -> ClientConfig:
    """The client config the command line asks for, on top of the library defaults."""
    fields: dict[str, Any] = {"http2": http2}
    if retries is not None:
        fields["retry"] = RetryConfig(max_retries=retries)
    timeout = parse_timeout(timeout)
    if timeout is not None:
        fields["timeout"] = TimeoutConfig.of(timeout)
    if rate is not None:
        # A burst of one second's worth: "100/s" allows 100 at once, then 100 a second.
        fields["rate_limit"] = RateLimitConfig(enabled=True, rate=rate, burst=max(1, int(rate)))
    if concurrency is not None:
        # Keep a connection per concurrent request alive: a batch reuses them all.
        size = max(100, concurrency)
        fields["pool"] = PoolConfig(max_connections=size, max_keepalive=size)
    return ClientConfig(**fields)
