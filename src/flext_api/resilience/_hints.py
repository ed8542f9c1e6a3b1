"""Server back-off hints: ``Retry-After`` and the ``RateLimit-*`` header family.

Hand-written because no maintained library parses all of these together:

* ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date (IMF-fixdate,
  RFC 850 and asctime forms; asctime carries no zone and is GMT by definition).
* ``RateLimit-Reset`` / ``RateLimit-Remaining`` (IETF draft
  ``draft-ietf-httpapi-ratelimit-headers``, versions up to 07): delta-seconds and a count.
* ``RateLimit: "policy";r=0;t=10`` (the same draft, version 08 and later): ``r`` is the
  remaining quota and ``t`` the seconds until it resets.
* ``X-RateLimit-Reset`` / ``X-RateLimit-Remaining`` (GitHub and many others): the reset
  is an epoch timestamp when it is larger than 10^9, else delta-seconds (Envoy reads the
  epoch form).

Every parser is total: a malformed value is ignored (None), never an exception, because
a broken header from a server must not turn a retryable failure into a crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["parse_retry_after", "rate_limit_remaining", "server_delay_hint"]

# A reset value above this is a Unix timestamp, not a delay (2001-09-09 in epoch seconds).
_EPOCH_THRESHOLD = 1_000_000_000.0


# ASCII digits only: float() would also take "1_0", "\u0661\u0662" (Arabic-Indic digits)
# and " +5", none of which is a delay-seconds (RFC 9110: 1*DIGIT).
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _number(value: str) -> float | None:
    """A finite, non-negative number written in ASCII digits, or None."""
    value = value.strip()
    if _NUMBER_RE.fullmatch(value) is None:
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _first(value: str) -> str:
    # A repeated field arrives joined with ", "; HTTP-dates contain a comma after the
    # weekday, so only split values that are not dates.
    return value.split(",", 1)[0] if value[:1].isdigit() else value


def parse_retry_after(value: str, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when it is malformed.

    ``wall_now`` is the current epoch time, used for the HTTP-date form; a date in the
    past means "retry now" (0.0).

    >>> parse_retry_after("120", 0.0)
    120.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 30.0)
    30.0
    """
    value = value.strip()
    if not value:
        return None
    if value[0].isdigit():
        return _number(_first(value))
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # asctime form: GMT by definition (RFC 9110 §5.6.7)
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - wall_now)
    except (TypeError, ValueError, IndexError, OverflowError):
        # Malformed, or a year or offset no datetime holds ("Thu, 01 Jan 99999...").
        return None


def _structured_params(value: str) -> dict[str, str]:
    """``r`` and ``t`` parameters of the draft-08 ``RateLimit`` field (first policy)."""
    params: dict[str, str] = {}
    first_item = value.split(",", 1)[0]
    for part in first_item.split(";")[1:]:
        name, sep, val = part.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip()
    return params


def _reset_delay(headers: Mapping[str, str], wall_now: float) -> float | None:
    value = headers.get("ratelimit-reset")
    if value is not None:
        return _number(_first(value))
    value = headers.get("ratelimit")
    if value is not None:
        t = _structured_params(value).get("t")
        if t is not None:
            return _number(t)
    value = headers.get("x-ratelimit-reset")
    if value is not None:
        reset = _number(_first(value))
        if reset is not None and reset > _EPOCH_THRESHOLD:
            return max(0.0, reset - wall_now)
        return reset
    return None


def rate_limit_remaining(headers: Mapping[str, str]) -> int | None:
    """The remaining quota the server announced, or None when it said nothing usable."""
    value = headers.get("ratelimit-remaining")
    if value is None:
        structured = headers.get("ratelimit")
        if structured is not None:
            value = _structured_params(structured).get("r")
    if value is None:
        value = headers.get("x-ratelimit-remaining")
    if value is None:
        return None
    number = _number(_first(value))
    return None if number is None else int(number)


def server_delay_hint(
    status: int | None, headers: Mapping[str, str], wall_now: float
) -> float | None:
    """How long the server asked us to wait before the next request, or None.

    ``Retry-After`` wins when present and valid. The reset of a rate-limit quota is a
    hint only when the server throttled us: a 429, or a remaining quota of zero.
    """
    value = headers.get("retry-after")
    if value is not None:
        delay = parse_retry_after(value, wall_now)
        if delay is not None:
            return delay
    if status == 429 or rate_limit_remaining(headers) == 0:
        return _reset_delay(headers, wall_now)
    return None
