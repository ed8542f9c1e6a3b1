"""Parsing for the HTTP cache: ``Cache-Control`` (RFC 9111 §5.2, RFC 5861), dates, ``Vary``.

Pure functions over header values; no I/O, no clock. Parsing follows the RFC's
robustness rules:

* a directive given twice keeps its first value;
* ``max-age``/``s-maxage`` that are not integers make the response stale (``0``), as
  RFC 9111 §4.2.1 recommends for invalid freshness information; other invalid values
  are ignored;
* delta-seconds above 2**31 are clamped to 2**31 (RFC 9111 §1.2.2), and only ASCII
  digits make a delta-seconds value;
* the qualified forms ``no-cache="field"`` and ``private="field"`` are treated as their
  unqualified forms - stricter than required and always safe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "MAX_DELTA_SECONDS",
    "CacheControl",
    "delta_seconds",
    "normalize_field",
    "parse_cache_control",
    "parse_http_date",
    "parse_vary",
]

_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

#: The largest delta-seconds kept; larger values (and overflowing sums) become this (§1.2.2).
MAX_DELTA_SECONDS = 2**31


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The ``Cache-Control`` directives a cache acts on (request and response ones together).

    Seconds are ints; ``max_stale`` is ``math.inf`` for a bare ``max-stale``.
    """

    max_age: int | None = None
    s_maxage: int | None = None
    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    max_stale: float | None = None
    min_fresh: int | None = None
    only_if_cached: bool = False
    must_understand: bool = False


def _split_directives(values: Iterable[str]) -> list[tuple[str, str | None]]:
    """``[(name, argument)]`` from header values, honouring quoted strings with commas.

    Inside a quoted string a backslash escapes the next character (RFC 9110 §5.6.4):
    ``a="\\"", no-store`` is ``a`` and ``no-store``. Taking that ``\\"`` as the end of the
    string would hide every directive after it, ``no-store`` or ``private`` included.
    """
    out: list[tuple[str, str | None]] = []
    for value in values:
        parts: list[str] = []
        current: list[str] = []
        quoted = escaped = False
        for char in value:
            if escaped:
                escaped = False
            elif quoted and char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            if char == "," and not quoted:
                parts.append("".join(current))
                current = []
            else:
                current.append(char)
        parts.append("".join(current))
        for part in parts:
            name, sep, arg = part.strip().partition("=")
            name = name.strip().lower()
            if name:
                out.append((name, _unquote(arg.strip()) if sep else None))
    return out


def _unquote(arg: str) -> str:
    """The text of a quoted-string argument (escapes undone); a token as it is."""
    if len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", arg[1:-1])
    return arg.strip('"')


def delta_seconds(arg: str | None) -> int | None:
    """A delta-seconds value (ASCII digits only, RFC 9111 §1.2.2), clamped; None if invalid.

    ``str.isdigit`` alone is not enough: it accepts ``"²"`` (which ``int`` rejects) and
    other scripts' digits, none of which are ``DIGIT`` in HTTP.
    """
    if arg is None or not (arg.isascii() and arg.isdigit()):
        return None
    return min(int(arg), MAX_DELTA_SECONDS)


_FLAGS = {
    "no-store": "no_store",
    "no-cache": "no_cache",
    "private": "private",
    "public": "public",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "only-if-cached": "only_if_cached",
    "must-understand": "must_understand",
}
_DELTAS = {
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
    "min-fresh": "min_fresh",
}
_FRESHNESS = {"max-age": "max_age", "s-maxage": "s_maxage"}


def parse_cache_control(values: Iterable[str]) -> CacheControl:
    """Parse every ``Cache-Control`` field value of a message into one :class:`CacheControl`."""
    fields: dict[str, object] = {}
    for name, arg in _split_directives(values):
        if name in _FLAGS:
            fields[_FLAGS[name]] = True
        elif name in _FRESHNESS:
            # Invalid freshness makes the response stale rather than fresh forever.
            seconds = delta_seconds(arg)
            fields.setdefault(_FRESHNESS[name], 0 if seconds is None else seconds)
        elif name in _DELTAS:
            seconds = delta_seconds(arg)
            if seconds is not None:
                fields.setdefault(_DELTAS[name], seconds)
        elif name == "max-stale":
            seconds = delta_seconds(arg)
            if arg is None:
                fields.setdefault("max_stale", math.inf)
            elif seconds is not None:
                fields.setdefault("max_stale", float(seconds))
    return CacheControl(**fields)  # type: ignore[arg-type]  # keys and types are fixed above


def parse_http_date(value: str | None) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7, incl. obsolete forms) as epoch seconds, or None if invalid."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        # OverflowError: a year too large for a C long ("01 Jan 99999999999999999999").
        return None
    if parsed.tzinfo is None:  # "-0000": a time in UTC with no zone information
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_vary(values: Iterable[str]) -> tuple[str, ...]:
    """The lower-cased field names listed by ``Vary`` (``"*"`` kept as is), in order, unique."""
    names: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name:
                names[name] = None
    return tuple(names)


def normalize_field(values: list[str]) -> str | None:
    """A request field's values in a comparable form (RFC 9111 §4.1), None when absent."""
    if not values:
        return None
    return ",".join(part.strip() for value in values for part in value.split(","))
